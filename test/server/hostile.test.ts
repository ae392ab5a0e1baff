/**
 * The server stays up and keeps answering others: a hostile chat template in the model file, a
 * 4 MiB prompt, requests from other web pages (foreign Host, text/plain POSTs), symlinks out of
 * the models folder, a busy port.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { loadModel, type GemmaModel } from "../../src/gemma.js";
import { startServer, type RunningServer } from "../../src/server/serve.js";
import { startWebServer } from "../../src/server/web.js";
import { cli, MAIN } from "../helpers/cli.js";
import { socketExchange } from "../helpers/socket.js";
import { writeTokenizerModel } from "../helpers/tokenizer.js";
import { tempDir } from "../helpers/temp.js";

const post = (
  server: RunningServer,
  path: string,
  body: unknown,
  headers: Record<string, string> = { "content-type": "application/json" },
) => fetch(`${server.url}${path}`, { method: "POST", headers, body: JSON.stringify(body) });

/** Milliseconds /health takes to answer while `busy` runs. */
async function healthLatencyDuring(server: RunningServer, busy: Promise<unknown>): Promise<number> {
  await new Promise((r) => setTimeout(r, 20));
  const t0 = performance.now();
  const health = await fetch(`${server.url}/health`);
  const ms = performance.now() - t0;
  assert.equal(health.status, 200);
  await busy;
  return ms;
}

/** A GET with a chosen Host header (fetch does not let a caller set it). */
function getWithHost(url: string, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers: { host } }, (res) => {
      res.resume();
      resolve(res.statusCode!);
    });
    req.on("error", reject);
    req.end();
  });
}

/** The status of a raw HTTP/1.0 request (request-line and headers as given), for what fetch and node:http never send. */
async function rawStatus(port: number, head: string): Promise<number> {
  const reply = await socketExchange({ port, host: "127.0.0.1" }, `${head}\r\n\r\n`);
  return Number(/^HTTP\/1\.\d (\d{3})/.exec(reply)?.[1] ?? 0);
}

describe("the server under hostile input", () => {
  let dir: string;
  let model: GemmaModel;
  let server: RunningServer;

  before(async () => {
    dir = await writeTokenizerModel();
    model = await loadModel(dir);
    server = await startServer(model, { modelName: "m", port: 0 });
  });
  after(() => server.close(0));

  it("a runaway chat template fails its request with a clear error; the server keeps serving", async () => {
    const config = JSON.parse(readFileSync(join(dir, "tokenizer_config.json"), "utf8")) as Record<string, unknown>;
    for (const template of [
      "{% for i in range(100000000) %}x{% endfor %}",
      "{% for i in range(10000) %}{% for j in range(10000) %}{{ i }}{% endfor %}{% endfor %}",
    ]) {
      const hostileDir = join(tempDir("gemma-ts-hostile"), "m");
      mkdirSync(hostileDir);
      for (const f of ["config.json", "model.safetensors", "tokenizer.json"])
        writeFileSync(join(hostileDir, f), readFileSync(join(dir, f)));
      writeFileSync(join(hostileDir, "tokenizer_config.json"), JSON.stringify({ ...config, chat_template: template }));
      const hostile = await startServer(await loadModel(hostileDir), { modelName: "m", port: 0 });
      try {
        const reply = post(hostile, "/v1/chat/completions", { messages: [{ role: "user", content: "hi" }], max_tokens: 2 });
        assert.ok((await healthLatencyDuring(hostile, reply)) < 1000);
        const response = await reply;
        assert.equal(response.status, 500);
        const body = (await response.json()) as { error: { message: string } };
        assert.match(body.error.message, /chat template (called range\(\) for 100,000,000 numbers|ran longer than|exceeded)/);
        const completion = await post(hostile, "/v1/completions", { prompt: "Hello", max_tokens: 2 });
        assert.equal(completion.status, 200, "the server still answers");
      } finally {
        await hostile.close(0);
      }
    }
  });

  it("a 4 MiB prompt is refused at once, a long one without blocking, and /health answers meanwhile", async () => {
    const huge = "And God said, Let there be light. ".repeat(Math.ceil((4 * 1024 * 1024 - 1000) / 34));
    const t0 = performance.now();
    const reply = post(server, "/v1/completions", { prompt: huge, max_tokens: 2 });
    assert.ok((await healthLatencyDuring(server, reply)) < 1000);
    const response = await reply;
    assert.equal(response.status, 400);
    assert.equal(((await response.json()) as { error: { code: string } }).error.code, "context_length_exceeded");
    assert.ok(performance.now() - t0 < 2000, `refused in ${performance.now() - t0} ms`);
    // Under the size bound (512 tokens × 31 characters) but far over 512 tokens: counted in chunks.
    const long = post(server, "/v1/chat/completions", { messages: [{ role: "user", content: huge.slice(0, 15000) }], max_tokens: 2 });
    assert.ok((await healthLatencyDuring(server, long)) < 1000);
    assert.equal((await long).status, 400);
  });

  it("other web pages cannot drive a loopback server: foreign Host names and non-JSON bodies are refused", async () => {
    assert.equal(await getWithHost(`${server.url}/v1/models`, "evil.example"), 403);
    assert.equal(await getWithHost(`${server.url}/v1/models`, `localhost:${server.port}`), 200);
    assert.equal(await getWithHost(`${server.url}/v1/models`, `127.0.0.1:${server.port}`), 200);
    // No Host at all (an HTTP/1.0 health check, never a browser) is answered; an empty one is not.
    assert.equal(await rawStatus(server.port, "GET /health HTTP/1.0"), 200);
    assert.equal(await rawStatus(server.port, "GET /health HTTP/1.0\r\nHost: "), 403);
    const plain = await post(server, "/v1/completions", { prompt: "Hello", max_tokens: 1 }, { "content-type": "text/plain" });
    assert.equal(plain.status, 415);
    assert.equal((await post(server, "/v1/completions", { prompt: "Hello", max_tokens: 1 })).status, 200);
    const allowing = await startServer(model, { modelName: "m", port: 0, allowHosts: ["gemma.local"] });
    try {
      assert.equal(await getWithHost(`${allowing.url}/v1/models`, "gemma.local"), 200, "--allow-host adds a name");
      assert.equal(await getWithHost(`${allowing.url}/v1/models`, "evil.example"), 403);
    } finally {
      await allowing.close(0);
    }
  });

  it("gemma-ts web serves only regular files inside --models, not what a symlink points to", async () => {
    const models = tempDir("gemma-ts-models");
    const outside = tempDir("gemma-ts-outside");
    writeFileSync(join(outside, "secret.gguf"), "secret");
    writeFileSync(join(models, "real.gguf"), "GGUF");
    symlinkSync(outside, join(models, "linked"));
    symlinkSync(join(outside, "secret.gguf"), join(models, "link.gguf"));
    const web = await startWebServer({ modelsDir: models, port: 0 });
    try {
      assert.equal((await fetch(`${web.url}models/real.gguf`)).status, 200);
      for (const path of ["models/linked/secret.gguf", "models/link.gguf"]) {
        const response = await fetch(`${web.url}${path}`);
        assert.notEqual(response.status, 200, path);
        assert.ok(!(await response.text()).includes("secret"), path);
      }
      assert.equal(await getWithHost(`${web.url}models/real.gguf`, "evil.example"), 403);
    } finally {
      await web.close();
    }
  });

  it("serve --allow-host adds a Host name the server answers", async () => {
    const child = spawn(
      process.execPath,
      ["--import", "tsx", MAIN, "serve", "--model", dir, "--port", "0", "--allow-host", "gemma.local"],
      { stdio: ["ignore", "ignore", "pipe"] },
    );
    try {
      let stderr = "";
      const url = await new Promise<string>((resolve, reject) => {
        child.stderr.on("data", (d: Buffer) => {
          stderr += d.toString();
          const m = /serving .* at (http:\/\/\S+)\/v1/.exec(stderr);
          if (m) resolve(m[1]!);
        });
        child.on("close", () => reject(new Error(stderr)));
      });
      assert.equal(await getWithHost(`${url}/v1/models`, "gemma.local"), 200);
      assert.equal(await getWithHost(`${url}/v1/models`, "other.local"), 403);
    } finally {
      child.kill();
    }
  });

  it("serve on a busy port says so in one line", async () => {
    const r = cli(["serve", "--port", String(server.port)]);
    assert.equal(r.code, 1);
    assert.equal(r.stderr.trim(), `gemma-ts: port ${server.port} on 127.0.0.1 is in use; pick another with --port (0: any free port)`);
  });
});
