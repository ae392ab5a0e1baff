/**
 * The browser loaders run in Node too (fetch, Blob and File are Web APIs here): a GGUF file and a
 * sharded Hugging Face folder read by range requests from `gemma-ts web`'s server, and picked
 * Files, must give exactly the model `loadModel` gives from disk.
 */
import assert from "node:assert/strict";
import { copyFileSync, cpSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { serve, type ServerType } from "@hono/node-server";
import { Hono } from "hono";
import { jsKernels } from "../../src/backend/js/index.js";
import { modelAddress } from "../../src/browser/model-address.js";
import { fileResponse } from "../../src/server/static-files.js";
import { BUNDLED_MODEL } from "../../src/bundled.js";
import { pickedFiles, urlFiles } from "../../src/browser/model-files.js";
import { loadModelFromFiles } from "../../src/browser/load.js";
import { CheckpointError } from "../../src/errors.js";
import { loadModel, type GemmaModel } from "../../src/gemma.js";
import { startWebServer, type RunningWebServer } from "../../src/server/web.js";
import { openCheckpointFolder } from "../../src/weights/checkpoint-folder.js";
import { encodeSafetensors } from "../../src/weights/safetensors-writer.js";
import { FIXTURES, tinyGemma2Json, writeRandomModel } from "../helpers/random-model.js";
import { writeTokenizerModel } from "../helpers/tokenizer.js";
import { tempDir } from "../helpers/temp.js";

/** A tokenizer model rewritten as two shards + index, the layout of real Gemma checkpoints. */
async function writeShardedFolder(into: string): Promise<string> {
  const source = await writeTokenizerModel();
  const ckpt = await openCheckpointFolder(source);
  const file = ckpt.files[0]!;
  const tensors = [];
  for (const name of file.tensors.keys()) tensors.push({ name, ...(await file.readTensor(name)) });
  await ckpt.close();
  mkdirSync(into);
  for (const name of ["config.json", "tokenizer.json", "tokenizer_config.json"]) copyFileSync(join(source, name), join(into, name));
  const weightMap: Record<string, string> = {};
  const half = Math.floor(tensors.length / 2);
  [tensors.slice(0, half), tensors.slice(half)].forEach((shard, i) => {
    const name = `model-0000${i + 1}-of-00002.safetensors`;
    writeFileSync(join(into, name), encodeSafetensors(shard));
    for (const t of shard) weightMap[t.name] = name;
  });
  writeFileSync(join(into, "model.safetensors.index.json"), JSON.stringify({ metadata: {}, weight_map: weightMap }));
  return into;
}

describe("browser loaders (in Node)", () => {
  let dir: string;
  let server: RunningWebServer;
  const ids = [2, 651, 1234, 77, 9];

  before(async () => {
    dir = tempDir("gemma-web-models");
    copyFileSync(BUNDLED_MODEL, join(dir, "kjv.gguf"));
    writeFileSync(join(dir, "corrupt.gguf"), readFileSync(BUNDLED_MODEL).subarray(0, 4000));
    await writeShardedFolder(join(dir, "sharded"));
    server = await startWebServer({ modelsDir: dir, port: 0 });
  });
  after(() => server.close());

  const sameModel = async (browser: GemmaModel, node: GemmaModel, prompt: string) => {
    assert.deepEqual(
      await browser.logits(ids.filter((id) => id < node.config.vocabSize)),
      await node.logits(ids.filter((id) => id < node.config.vocabSize)),
    );
    const options = { maxTokens: 12, seed: 3 };
    assert.equal(
      await browser.generate([{ role: "user", content: prompt }], options).complete(),
      await node.generate([{ role: "user", content: prompt }], options).complete(),
    );
  };

  it("loads a GGUF by URL through range requests, exactly as from disk", async () => {
    const browser = await loadModelFromFiles(urlFiles(`${server.url}models/kjv.gguf`, { cache: null }), jsKernels);
    await sameModel(browser, await loadModel(BUNDLED_MODEL, { kernels: "js" }), "And God said");
  });

  it("loads a sharded safetensors folder (index, shards, tokenizer.json) by its base URL", async () => {
    const browser = await loadModelFromFiles(urlFiles(`${server.url}models/sharded`, { cache: null }), jsKernels);
    assert.ok(browser.tokenizer, "tokenizer.json was read");
    await sameModel(browser, await loadModel(join(dir, "sharded"), { kernels: "js" }), "Hello there");
  });

  it("reads a folder's tokenizer.gguf when it has no tokenizer.json, by URL and picked", async () => {
    const folder = writeRandomModel(tinyGemma2Json({ vocab_size: 4096 }), 5);
    copyFileSync(`${FIXTURES}kjv-vocab.gguf`, join(folder, "tokenizer.gguf"));
    cpSync(folder, join(dir, "spm"), { recursive: true });
    const node = await loadModel(folder, { kernels: "js" });
    const byUrl = await loadModelFromFiles(urlFiles(`${server.url}models/spm/`, { cache: null }), jsKernels);
    assert.equal(byUrl.tokenizer?.vocabSize, 4000);
    await sameModel(byUrl, node, "And God said");
    const picked = pickedFiles(readdirSync(folder).map((name) => new File([readFileSync(join(folder, name))], name)));
    await sameModel(await loadModelFromFiles(picked, jsKernels), node, "And God said");
  });

  it("loads picked files: a folder (webkitRelativePath) or one .gguf", async () => {
    const folder = join(dir, "sharded");
    const files = readdirSync(folder).map((name) => {
      const file = new File([readFileSync(join(folder, name))], name);
      Object.defineProperty(file, "webkitRelativePath", { value: `sharded/${name}` });
      return file;
    });
    const fromFolder = await loadModelFromFiles(pickedFiles(files), jsKernels);
    await sameModel(fromFolder, await loadModel(folder, { kernels: "js" }), "Hi");
    const fromGguf = await loadModelFromFiles(pickedFiles([new File([readFileSync(BUNDLED_MODEL)], "kjv.gguf")]), jsKernels);
    await sameModel(fromGguf, await loadModel(BUNDLED_MODEL, { kernels: "js" }), "In the beginning");
  });

  it("names the URL and the problem for a corrupt file, a folder without config.json, a missing file", async () => {
    await assert.rejects(loadModelFromFiles(urlFiles(`${server.url}models/corrupt.gguf`, { cache: null }), jsKernels), (e: Error) => {
      assert.ok(e instanceof CheckpointError, e.message);
      assert.match(e.message, /corrupt\.gguf/);
      return true;
    });
    await assert.rejects(loadModelFromFiles(urlFiles(`${server.url}models/`, { cache: null }), jsKernels), /no config\.json/);
    await assert.rejects(
      loadModelFromFiles(urlFiles(`${server.url}models/absent.gguf`, { cache: null }), jsKernels),
      /absent\.gguf: HTTP 404/,
    );
    await assert.rejects(loadModelFromFiles(pickedFiles([new File(["{}"], "notes.txt")]), jsKernels), /no config\.json/);
  });

  it("sends a Hub token only to the Hub's origin, and explains a 401", async () => {
    const app = new Hono();
    app.use("*", async (c, next) => (c.req.header("Authorization") === "Bearer hf_secret" ? next() : c.text("gated", 401)));
    app.on(["GET", "HEAD"], "/org/model/resolve/main/kjv.gguf", (c) => fileResponse(BUNDLED_MODEL, c.req.raw));
    const hub = await new Promise<ServerType>((resolve) => {
      const s = serve({ fetch: app.fetch, hostname: "127.0.0.1", port: 0 }, () => resolve(s));
    });
    try {
      const origin = `http://127.0.0.1:${(hub.address() as AddressInfo).port}`;
      const url = modelAddress("org/model/kjv.gguf", server.url, origin);
      const gated = await loadModelFromFiles(urlFiles(url, { cache: null, authorization: { origin, token: "hf_secret" } }), jsKernels);
      assert.equal(
        await gated.generate("And God said", { maxTokens: 8, seed: 2 }).complete(),
        await (await loadModel(BUNDLED_MODEL, { kernels: "js" })).generate("And God said", { maxTokens: 8, seed: 2 }).complete(),
      );
      await assert.rejects(
        loadModelFromFiles(urlFiles(url, { cache: null }), jsKernels),
        /HTTP 401 Unauthorized \(a gated or private model: give a Hugging Face token that has access to it\)/,
      );
      const elsewhere = { origin: "https://huggingface.co", token: "hf_secret" };
      await assert.rejects(
        loadModelFromFiles(urlFiles(url, { cache: null, authorization: elsewhere }), jsKernels),
        /HTTP 401/,
        "the token is not sent to another origin",
      );
    } finally {
      hub.close();
    }
  });

  it("says so when a server ignores range requests, or hides Content-Range", async () => {
    // "/partial": a 206 without Content-Range, as a page sees a server on another origin that does not expose it.
    const plain = createServer((req, res) => {
      if (req.url === "/partial/model.gguf") res.writeHead(206);
      res.end("GGUF and more bytes");
    });
    await new Promise<void>((resolve) => plain.listen(0, "127.0.0.1", resolve));
    try {
      const base = `http://127.0.0.1:${(plain.address() as AddressInfo).port}`;
      await assert.rejects(
        loadModelFromFiles(urlFiles(`${base}/model.gguf`, { cache: null }), jsKernels),
        /does not answer range requests \(status 200\); turn on caching/,
      );
      await assert.rejects(
        loadModelFromFiles(urlFiles(`${base}/partial/model.gguf`, { cache: null }), jsKernels),
        /shows this page no Content-Range header \(CORS\)/,
      );
    } finally {
      plain.close();
    }
  });
});
