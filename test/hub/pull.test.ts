import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, readFileSync, readlinkSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { loadModel } from "../../src/gemma.js";
import { pullModel, type PullProgress } from "../../src/hub/pull.js";
import { HubError } from "../../src/hub/repo-id.js";
import { openCheckpointFolder } from "../../src/weights/checkpoint-folder.js";
import { encodeSafetensors, type NamedTensor } from "../../src/weights/safetensors-writer.js";
import { FakeHub } from "../helpers/hub-server.js";
import { FIXTURES } from "../helpers/random-model.js";
import { writeTokenizerModel } from "../helpers/tokenizer.js";
import { tempDir } from "../helpers/temp.js";

const freshCache = () => tempDir("gemma-ts-hf-cache");

/** tiny_a split into two shards with an index, as large checkpoints are published. */
async function shardedFolder(): Promise<string> {
  const dir = tempDir("gemma-ts-sharded");
  const ckpt = await openCheckpointFolder(`${FIXTURES}tiny_a`);
  const tensors: NamedTensor[] = [];
  for (const name of ckpt.tensorNames()) tensors.push({ name, ...(await ckpt.files[0]!.readTensor(name)) });
  await ckpt.close();
  const weightMap: Record<string, string> = {};
  [tensors.slice(0, 20), tensors.slice(20)].forEach((shard, i) => {
    const file = `model-0000${i + 1}-of-00002.safetensors`;
    writeFileSync(join(dir, file), encodeSafetensors(shard));
    for (const t of shard) weightMap[t.name] = file;
  });
  writeFileSync(join(dir, "model.safetensors.index.json"), JSON.stringify({ metadata: {}, weight_map: weightMap }));
  writeFileSync(join(dir, "config.json"), readFileSync(`${FIXTURES}tiny_a/config.json`));
  writeFileSync(join(dir, "README.md"), "# not needed by gemma-ts\n".repeat(100));
  return dir;
}

/** A folder holding only a Q8_0 GGUF of tiny_a (a GGUF repo's layout). */
async function ggufFolder(): Promise<string> {
  const { encodeGgufModel } = await import("../../src/model/gguf-export.js");
  const { loadConfig } = await import("../../src/gemma.js");
  const dir = tempDir("gemma-ts-gguf-repo");
  const ckpt = await openCheckpointFolder(`${FIXTURES}tiny_a`);
  const config = await loadConfig(`${FIXTURES}tiny_a`);
  writeFileSync(
    join(dir, "tiny-a-q8_0.gguf"),
    await encodeGgufModel(ckpt, config as Parameters<typeof encodeGgufModel>[1], { matrixType: "Q8_0" }),
  );
  await ckpt.close();
  return dir;
}

describe("Hub pull into the HF cache", () => {
  const hub = new FakeHub();
  let chatDir: string;

  before(async () => {
    await hub.start();
    chatDir = await writeTokenizerModel();
    hub.host("acme/tiny-chat", chatDir);
    hub.host("acme/tiny-a-sharded", await shardedFolder());
    hub.host("google/gemma-gated", chatDir, { allowedToken: "hf_granted" });
    hub.host("acme/tiny-a-GGUF", await ggufFolder());
  });
  after(() => hub.close());

  const opts = (cacheDir: string, extra: Record<string, unknown> = {}) => ({
    endpoint: hub.url,
    cacheDir,
    token: undefined,
    offline: false,
    ...extra,
  });

  it("loads one GGUF file of a repo by org/name/file.gguf, then from the cache offline", async () => {
    const cacheDir = freshCache();
    const spec = "acme/tiny-a-GGUF/tiny-a-q8_0.gguf";
    const model = await loadModel(spec, { ...opts(cacheDir), kernels: "js" });
    assert.equal(model.config.nLayers, 4);
    const offline = await loadModel(spec, { ...opts(cacheDir), offline: true, kernels: "js" });
    const ids = [2, 194, 93];
    assert.deepEqual(await offline.logits(ids), await model.logits(ids));
    await assert.rejects(loadModel("acme/tiny-a-GGUF/other.gguf", { ...opts(cacheDir), kernels: "js" }), /has no file other\.gguf/);
  });

  it("fills a fresh cache with the huggingface_hub layout, and the snapshot loads", async () => {
    const cacheDir = freshCache();
    const events: PullProgress[] = [];
    const result = await pullModel("acme/tiny-chat", { ...opts(cacheDir), onProgress: (p) => events.push(structuredClone(p)) });
    const repoDir = join(cacheDir, "models--acme--tiny-chat");
    const commit = hub.repos.get("acme/tiny-chat")!.commit;
    assert.equal(result.commit, commit);
    assert.equal(result.dir, join(repoDir, "snapshots", commit));
    assert.equal(readFileSync(join(repoDir, "refs", "main"), "utf8"), commit);
    assert.deepEqual(result.files.sort(), ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"]);
    // LFS files are stored under their sha256, small files under their git sha1; snapshots link relatively.
    const weightsSha = hub.fileSha256("acme/tiny-chat", "model.safetensors");
    assert.equal(readlinkSync(join(result.dir, "model.safetensors")), `../../blobs/${weightsSha}`);
    assert.match(readlinkSync(join(result.dir, "config.json")), /^\.\.\/\.\.\/blobs\/[0-9a-f]{40}$/);
    assert.equal(statSync(join(repoDir, "blobs", weightsSha)).size, statSync(join(chatDir, "model.safetensors")).size);
    const last = events.at(-1)!;
    assert.equal(last.receivedBytes, last.totalBytes);
    assert.ok(last.files.every((f) => f.state === "done"));
    const model = await loadModel(result.dir);
    const original = await loadModel(chatDir);
    assert.deepEqual(await model.logits([2, 651]), await original.logits([2, 651]));
  });

  it("downloads nothing the second time", async () => {
    const cacheDir = freshCache();
    await pullModel("acme/tiny-chat", opts(cacheDir));
    const served = hub.servedBytes;
    const events: PullProgress[] = [];
    const again = await pullModel("acme/tiny-chat", { ...opts(cacheDir), onProgress: (p) => events.push(structuredClone(p)) });
    assert.equal(hub.servedBytes, served);
    assert.equal(again.downloadedBytes, 0);
    assert.ok(events.at(-1)!.files.every((f) => f.state === "cached"));
  });

  it("resumes a download cut off halfway and ends with a correct file", async () => {
    const cacheDir = freshCache();
    const sha = hub.fileSha256("acme/tiny-chat", "model.safetensors");
    const size = statSync(join(chatDir, "model.safetensors")).size;
    hub.cutAfter.set(sha, Math.floor(size / 2));
    await assert.rejects(
      pullModel("acme/tiny-chat", opts(cacheDir)),
      (e: unknown) =>
        e instanceof HubError &&
        /model\.safetensors: download (interrupted|incomplete).*run the same command again to resume/.test(e.message),
    );
    const partial = join(cacheDir, "models--acme--tiny-chat", "blobs", `${sha}.incomplete`);
    const kept = statSync(partial).size;
    assert.ok(kept > 0 && kept <= size / 2, `partial file of ${kept} bytes`);
    const before = hub.servedBytes;
    const result = await pullModel("acme/tiny-chat", opts(cacheDir));
    assert.equal(hub.servedBytes - before, size - kept, "only the missing part is fetched");
    assert.ok(!existsSync(partial));
    assert.deepEqual(readFileSync(join(result.dir, "model.safetensors")), readFileSync(join(chatDir, "model.safetensors")));
  });

  it("detects a corrupted download (wrong sha256) and does not keep it", async () => {
    const cacheDir = freshCache();
    const sha = hub.fileSha256("acme/tiny-chat", "model.safetensors");
    hub.corrupt.add(sha);
    try {
      await assert.rejects(
        pullModel("acme/tiny-chat", opts(cacheDir)),
        /model\.safetensors: integrity check failed \(expected sha256 [0-9a-f]{64}, got [0-9a-f]{64}\); the corrupt download was deleted/,
      );
      const blobs = join(cacheDir, "models--acme--tiny-chat", "blobs");
      assert.ok(!existsSync(join(blobs, sha)));
      assert.ok(!existsSync(join(blobs, `${sha}.incomplete`)));
    } finally {
      hub.corrupt.delete(sha);
    }
    await pullModel("acme/tiny-chat", opts(cacheDir));
  });

  it("pulls a sharded checkpoint: the index and exactly the shards it names", async () => {
    const cacheDir = freshCache();
    const result = await pullModel("acme/tiny-a-sharded", opts(cacheDir));
    assert.deepEqual(result.files.sort(), [
      "config.json",
      "model-00001-of-00002.safetensors",
      "model-00002-of-00002.safetensors",
      "model.safetensors.index.json",
    ]);
    const model = await loadModel(result.dir);
    const reference = await loadModel(`${FIXTURES}tiny_a`);
    assert.deepEqual(await model.logits([2, 3, 4]), await reference.logits([2, 3, 4]));
  });

  it("explains gated repos instead of failing with a stack trace", async () => {
    await assert.rejects(
      pullModel("google/gemma-gated", opts(freshCache())),
      /google\/gemma-gated is gated: accept the licence on http:\/\/127\.0\.0\.1:\d+\/google\/gemma-gated, then set HF_TOKEN/,
    );
    await assert.rejects(
      pullModel("google/gemma-gated", opts(freshCache(), { token: "hf_someone_else" })),
      /is gated and this token has no access yet: accept the licence/,
    );
    const ok = await pullModel("google/gemma-gated", opts(freshCache(), { token: "hf_granted" }));
    assert.ok(existsSync(join(ok.dir, "model.safetensors")));
  });

  it("names missing repos, files and revisions", async () => {
    await assert.rejects(
      pullModel("acme/nothing-here", opts(freshCache())),
      /repository acme\/nothing-here not found on http:\/\/127\.0\.0\.1:\d+ \(and no such local folder\); if it is private, set HF_TOKEN/,
    );
    await assert.rejects(
      pullModel("acme/tiny-chat", opts(freshCache(), { file: "model-q4_0.gguf" })),
      /acme\/tiny-chat@main has no file model-q4_0\.gguf/,
    );
    await assert.rejects(pullModel("not a repo", opts(freshCache())), /is not a Hub repo id/);
  });

  it("resolves repo ids from the cache first and works offline", async () => {
    const cacheDir = freshCache();
    await pullModel("acme/tiny-chat", opts(cacheDir));
    // An unreachable endpoint proves no request is made when the cache is complete.
    const cached = await loadModel("acme/tiny-chat", { cacheDir, endpoint: "http://127.0.0.1:9", token: undefined });
    assert.equal(cached.config.vocabSize, 256000);
    const commit = hub.repos.get("acme/tiny-chat")!.commit;
    assert.ok(await loadModel(`acme/tiny-chat@${commit}`, { cacheDir, offline: true }));
    await assert.rejects(
      loadModel("acme/tiny-a-sharded", { cacheDir, offline: true, endpoint: hub.url }),
      /offline: acme\/tiny-a-sharded is neither a local folder nor complete in the HF cache/,
    );
    const served = hub.servedBytes;
    await assert.rejects(
      pullModel("acme/tiny-a-sharded", opts(cacheDir, { offline: true })),
      /offline: acme\/tiny-a-sharded@main \(the model files\) is not in the HF cache/,
    );
    assert.equal(hub.servedBytes, served);
  });

  describe("command line", () => {
    const MAIN = new URL("../../src/cli/main.ts", import.meta.url).pathname;
    /** Async on purpose: the fake Hub lives in this process and must keep answering. */
    const run = (args: string[], env: Record<string, string>, input = "") =>
      new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
        const child = spawn(process.execPath, ["--import", "tsx", MAIN, ...args], { env: { ...process.env, HF_TOKEN: "", ...env } });
        let stdout = "";
        let stderr = "";
        child.stdout.on("data", (d) => (stdout += d));
        child.stderr.on("data", (d) => (stderr += d));
        child.on("close", (status) => resolve({ status, stdout, stderr }));
        child.stdin.end(input);
      });

    it("gemma-ts pull fills the cache, then finds nothing to download", async () => {
      const env = { HF_ENDPOINT: hub.url, HF_HUB_CACHE: freshCache() };
      const first = await run(["pull", "acme/tiny-a-sharded"], env);
      assert.equal(first.status, 0, first.stderr);
      assert.match(first.stdout, /snapshots\/[0-9a-f]{40}/);
      assert.match(first.stderr, /downloaded [\d.]+ \w+ in 4 files/);
      const second = await run(["pull", "acme/tiny-a-sharded"], env);
      assert.equal(second.status, 0, second.stderr);
      assert.match(second.stderr, /already in the cache: nothing downloaded/);
      const offline = await run(["pull", "acme/tiny-chat", "--offline"], env);
      assert.equal(offline.status, 1);
      assert.match(offline.stderr, /^gemma-ts: offline: acme\/tiny-chat@main \(the model files\) is not in the HF cache/);
    });

    it("gemma-ts chat --model org/name downloads and chats end to end", async () => {
      const env = { HF_ENDPOINT: hub.url, HF_HUB_CACHE: freshCache() };
      const r = await run(["chat", "--model", "acme/tiny-chat", "-n", "4", "-t", "0"], env, "Hello\n");
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stdout.trim().split("\n").length, 1);
      assert.match(r.stderr, /\[\d+ tokens, .* prompt tokens from cache\]/);
      const gated = await run(["chat", "--model", "google/gemma-gated"], { ...env, HF_TOKEN: "" }, "");
      assert.equal(gated.status, 1);
      assert.match(gated.stderr, /^gemma-ts: google\/gemma-gated is gated: accept the licence/);
      const withToken = await run(["generate", "--model", "google/gemma-gated", "-p", "Hi", "-n", "2"], { ...env, HF_TOKEN: "hf_granted" });
      assert.equal(withToken.status, 0, withToken.stderr);
    });
  });
});
