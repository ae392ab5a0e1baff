/**
 * End to end in a real browser: `gemma-ts web` serves the chat page and a model folder, Debian's
 * Chromium (headless, driven by playwright-core) loads the model by URL in its worker, and the
 * streamed reply must equal what `gemma-ts generate --chat` prints in Node for the same seed.
 * Needs /usr/bin/chromium (`apt-get install chromium`; .ci/run installs it and sets
 * GEMMA_TS_REQUIRE_BROWSER=1 so that a missing browser fails instead of skipping).
 */
import assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { copyFileSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { chromium, type Browser, type Page } from "playwright-core";
import { BUNDLED_MODEL } from "../../src/bundled.js";
import { startWebServer, WEB_PAGE_DIR } from "../../src/server/web.js";
import { writeGemma4TokenizerModel, writeTokenizerModel } from "../helpers/tokenizer.js";
import { browserTestSkip, CHROMIUM, CHROMIUM_ARGS } from "../helpers/chromium.js";
import { tempDir } from "../helpers/temp.js";

const CLI = ["--import", "tsx", new URL("../../src/cli/main.ts", import.meta.url).pathname];
/** The docs' screenshot is refreshed only when asked (GEMMA_TS_SCREENSHOT=1): each run's port and speed differ. */
const SCREENSHOT =
  process.env["GEMMA_TS_SCREENSHOT"] === "1"
    ? new URL("../../docs/web-chat.png", import.meta.url).pathname
    : join(tmpdir(), "gemma-ts-web-chat.png");
const PROMPT = "And God said";
const SEED = 1;
const MAX_TOKENS = 24;

/** Starts `gemma-ts web` on a free port; resolves with its URL once it prints it. */
function startCli(args: string[], log: string[]): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, [...CLI, "web", "--port", "0", ...args], { stdio: ["ignore", "pipe", "pipe"] });
  child.stderr!.on("data", (chunk: Buffer) => log.push(...chunk.toString().split("\n").filter(Boolean)));
  return new Promise((resolve, reject) => {
    let out = "";
    child.stdout!.on("data", (chunk: Buffer) => {
      out += chunk.toString();
      const url = /open (http:\/\/\S+\/)/.exec(out)?.[1];
      if (url) resolve({ child, url });
    });
    child.once("exit", (code) => reject(new Error(`gemma-ts web exited with ${code}: ${log.join("\n")}`)));
  });
}

/** What Node prints for the same model, prompt, seed and sampling defaults. */
function nodeReply(model: string, prompt = PROMPT): string {
  const run = spawnSync(
    process.execPath,
    [...CLI, "generate", "--model", model, "--chat", "--prompt", prompt, "--seed", String(SEED), "--max-tokens", String(MAX_TOKENS)],
    { encoding: "utf8" },
  );
  assert.equal(run.status, 0, run.stderr);
  return run.stdout.replace(/\n$/, "");
}

/** The cache listing once the page has refreshed it after the last load. */
async function cacheListAfter(page: Page, action: () => Promise<unknown>): Promise<string> {
  // The page lists the cache once as it opens: that listing must be in before the count is read,
  // or it would pass for the one after `action` (a race a loaded CI machine lost once).
  await page.waitForFunction(() => Number(document.getElementById("cache-list")!.dataset["version"] ?? 0) >= 1);
  const version = Number(await page.getAttribute("#cache-list", "data-version"));
  await action();
  await page.waitForFunction((v) => Number(document.getElementById("cache-list")!.dataset["version"]) > v, version);
  return (await page.textContent("#cache-list"))!;
}

async function loadUrl(page: Page, url: string, cache = true): Promise<string> {
  await page.fill("#model-url", url);
  await page.setChecked("#use-cache", cache);
  await page.click("#load-url");
  await page.waitForFunction(() => document.body.dataset["model"] !== "loading", null, { timeout: 120_000 });
  return (await page.getAttribute("body", "data-model"))!;
}

/** Sends the prompt with the seed; returns the reply text and how many times it grew while streaming. */
async function ask(page: Page, prompt = PROMPT, maxTokens = MAX_TOKENS): Promise<{ text: string; updates: number; stats: string }> {
  await page.fill("#seed", String(SEED));
  await page.fill("#max-tokens", String(maxTokens));
  await page.fill("#prompt", prompt);
  const turn = (await page.locator(".message.model").count()) + 1;
  await page.evaluate(() => {
    const w = window as unknown as { updates: number };
    w.updates = 0;
    new MutationObserver(() => w.updates++).observe(document.getElementById("messages")!, { subtree: true, characterData: true });
  });
  await page.click("#send");
  const answer = page.locator(`.message.model[data-turn="${turn}"]`);
  await answer.and(page.locator("[data-done]")).waitFor({ timeout: 120_000 });
  assert.match((await answer.getAttribute("data-done"))!, /^(length|stop)$/);
  const text = await answer.evaluate((el) => el.lastChild!.textContent!);
  return {
    text,
    updates: await page.evaluate(() => (window as unknown as { updates: number }).updates),
    stats: (await page.textContent("#reply-stats"))!,
  };
}

const skip = browserTestSkip();

describe("the chat page in headless Chromium", { skip }, () => {
  let browser: Browser;
  let server: { child: ChildProcess; url: string };
  let models: string;
  let expected: string;
  const serverLog: string[] = [];

  /** The server logs in request order: once a marker request shows, every earlier one has. */
  let markers = 0;
  const settledLog = async (): Promise<string[]> => {
    const marker = `HEAD /models/marker-${++markers} whole → 404`;
    await fetch(`${server.url}models/marker-${markers}`, { method: "HEAD" });
    while (!serverLog.some((l) => l.endsWith(marker))) await new Promise((r) => setTimeout(r, 20));
    return serverLog.filter((l) => !l.includes("/models/marker-"));
  };

  before(async () => {
    assert.ok(existsSync(CHROMIUM), `Chromium is required here (GEMMA_TS_REQUIRE_BROWSER=1) but ${CHROMIUM} is missing`);
    assert.ok(existsSync(join(WEB_PAGE_DIR, "runtime-worker.js")), `the page is not built in ${WEB_PAGE_DIR}: run npm run build:web`);
    models = tempDir("gemma-web-e2e");
    copyFileSync(BUNDLED_MODEL, join(models, "kjv.gguf"));
    // A real header cut short: the parser must say what is wrong, not hang or crash the page.
    writeFileSync(join(models, "corrupt.gguf"), readFileSync(BUNDLED_MODEL).subarray(0, 100_000));
    expected = nodeReply(join(models, "kjv.gguf"));
    server = await startCli(["--models", models], serverLog);
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  });
  after(async () => {
    await browser?.close();
    server?.child.kill();
  });

  it("loads a model by URL and streams the reply `gemma-ts generate` prints for the same seed", async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 760 } });
    const errors: string[] = [];
    page.on("pageerror", (e) => errors.push(e.message));
    await page.goto(server.url);
    assert.equal(await page.evaluate(() => crossOriginIsolated), true);
    assert.equal(await loadUrl(page, `${server.url}models/kjv.gguf`), "loaded", (await page.textContent("#error")) ?? "");
    assert.match((await page.textContent("#model-info"))!, /gemma2, 3 layers × 128.*kernelswasm-relaxed×\d \(\d threads\)/);

    const reply = await ask(page);
    assert.ok(expected.length > 20, `a real reply to compare: ${JSON.stringify(expected)}`);
    assert.equal(reply.text, expected);
    assert.ok(reply.updates > 5, `the reply arrived in pieces (${reply.updates} updates)`);
    assert.match(reply.stats, new RegExp(`^${MAX_TOKENS} tokens · [\\d.]+ tokens/s · first token [\\d.]+ s · finish: length$`));
    await page.screenshot({ path: SCREENSHOT });

    // Reloading the page reads the model from the Origin Private File System, not the network.
    const downloads = async () => (await settledLog()).filter((l) => l.includes("GET /models/kjv.gguf whole")).length;
    assert.equal(await downloads(), 1);
    await page.reload();
    assert.equal(await loadUrl(page, `${server.url}models/kjv.gguf`), "loaded");
    assert.match((await page.textContent("#load-status"))!, /from the browser cache/);
    assert.equal(await downloads(), 1, serverLog.join("\n"));
    assert.equal((await ask(page)).text, expected);
    assert.match((await page.textContent("#cache-list"))!, /kjv\.gguf \(4\.9 MiB\)/);
    await page.click("#clear-cache");
    await page.waitForFunction(() => document.getElementById("cache-list")!.textContent!.startsWith("freed"));
    assert.match((await page.textContent("#cache-list"))!, /^freed 4\.9 MiB\. empty$/);
    assert.deepEqual(errors, []);
    await page.close();
  });

  it("shows a readable error for a corrupt file, a missing one and a bad URL, and stays usable", async () => {
    const page = await browser.newPage();
    await page.goto(server.url);
    assert.equal(await loadUrl(page, `${server.url}models/corrupt.gguf`), "error");
    const error = (await page.textContent("#error"))!;
    assert.ok(await page.isVisible("#error"));
    assert.match(
      error,
      /^Could not load .*corrupt\.gguf:\n.*corrupt\.gguf: tensor \S+: bytes \d+\.\.\d+ run past the end of the file \(100000 bytes\): truncated\?$/s,
    );
    assert.doesNotMatch(error, /undefined|\[object/);
    assert.equal(await loadUrl(page, `${server.url}models/missing.gguf`, false), "error");
    assert.match((await page.textContent("#error"))!, /missing\.gguf: HTTP 404/);
    await page.fill("#model-url", "http://[bad");
    await page.click("#load-url");
    assert.match((await page.textContent("#error"))!, /Not a URL, a path or a Hub repo id: http:\/\/\[bad/);

    assert.equal(await loadUrl(page, `${server.url}models/kjv.gguf`, false), "loaded");
    assert.equal(await page.isVisible("#error"), false);
    assert.equal((await ask(page)).text, expected);

    // Stop, clicked by the page itself the moment the first token shows.
    await page.fill("#max-tokens", "400");
    await page.fill("#prompt", "Tell me more");
    await page.evaluate(() => {
      const stop = document.getElementById("stop") as HTMLButtonElement;
      const observer = new MutationObserver(() => {
        observer.disconnect();
        stop.click();
      });
      observer.observe(document.getElementById("messages")!, { subtree: true, characterData: true });
    });
    await page.click("#send");
    const stopped = page.locator('.message.model[data-turn="2"][data-done]');
    await stopped.waitFor({ timeout: 60_000 });
    assert.equal(await stopped.getAttribute("data-done"), "abort");
    const tokens = Number(/^(\d+) tokens/.exec((await page.textContent("#reply-stats"))!)?.[1]);
    assert.ok(tokens >= 1 && tokens < 50, `stopped after ${tokens} tokens`);
    assert.match((await page.textContent("#reply-stats"))!, /stopped$/);
    assert.equal(await page.isEnabled("#send"), true);
    await page.close();
  });

  it("does not keep a copy that failed to load, nor use one the server has replaced", async () => {
    const page = await browser.newPage();
    await page.goto(server.url);
    const swap = join(models, "swap.gguf");
    copyFileSync(BUNDLED_MODEL, swap);
    const url = `${server.url}models/swap.gguf`;
    assert.match(await cacheListAfter(page, () => loadUrl(page, url)), /swap\.gguf \(4\.9 MiB\)/);

    writeFileSync(swap, readFileSync(BUNDLED_MODEL).subarray(0, 100_000));
    assert.doesNotMatch(await cacheListAfter(page, async () => assert.equal(await loadUrl(page, url), "error")), /swap\.gguf/);
    assert.match((await page.textContent("#error"))!, /swap\.gguf: tensor \S+: bytes .* truncated\?$/);

    copyFileSync(BUNDLED_MODEL, swap);
    assert.equal(await loadUrl(page, url), "loaded");
    assert.doesNotMatch((await page.textContent("#load-status"))!, /from the browser cache/);
    assert.equal((await ask(page)).text, expected);
    await page.close();
  });

  it("opens a .gguf file and a Hugging Face folder (safetensors + tokenizer.json) from disk", async () => {
    const page = await browser.newPage();
    await page.goto(server.url);
    await page.setInputFiles("#pick-file", join(models, "kjv.gguf"));
    await page.waitForFunction(() => document.body.dataset["model"] === "loaded", null, { timeout: 60_000 });
    assert.match((await page.textContent("#model-info"))!, /^modelkjv\.gguf/);
    assert.equal((await ask(page)).text, expected);

    const folder = await writeTokenizerModel();
    const prompt = "Hello, who are you?";
    await page.setInputFiles("#pick-folder", folder);
    await page.waitForFunction(() => document.body.dataset["model"] !== "loading", null, { timeout: 60_000 });
    assert.equal(await page.getAttribute("body", "data-model"), "loaded", (await page.textContent("#error")) ?? "");
    assert.match((await page.textContent("#model-info"))!, /vocabulary256,000/);
    assert.equal((await ask(page, prompt)).text, nodeReply(folder, prompt));
    await page.close();
  });

  it("runs a Gemma 4 checkpoint (every Gemma 4 feature, Gemma 3's 262k vocabulary) and replies as `gemma-ts generate` does", async () => {
    const folder = await writeGemma4TokenizerModel();
    const prompt = "Hello, who are you?";
    const page = await browser.newPage();
    await page.goto(server.url);
    await page.setInputFiles("#pick-folder", folder);
    await page.waitForFunction(() => document.body.dataset["model"] !== "loading", null, { timeout: 60_000 });
    assert.equal(await page.getAttribute("body", "data-model"), "loaded", (await page.textContent("#error")) ?? "");
    assert.match((await page.textContent("#model-info"))!, /vocabulary262,145/);
    assert.equal((await ask(page, prompt)).text, nodeReply(folder, prompt));
    await page.close();
  });

  it("decodes a JSON reply in the page (XGrammar's WebAssembly in the model worker) that parses, where a free reply does not", async () => {
    const page = await browser.newPage();
    await page.goto(server.url);
    assert.equal(await loadUrl(page, `${server.url}models/kjv.gguf`), "loaded");
    await page.fill("#temperature", "0");
    await page.setChecked("#json-reply", true);
    for (const prompt of ["Give me JSON.", "More JSON."]) {
      const { text } = await ask(page, prompt, 300);
      const value: unknown = JSON.parse(text);
      assert.ok(typeof value === "object" && value !== null && !Array.isArray(value), text);
    }
    await page.setChecked("#json-reply", false);
    const free = (await ask(page, "Give me JSON.", 300)).text;
    assert.throws(() => JSON.parse(free), free);
    await page.close();
  });

  it("runs on WebGPU where the browser has it (?backend=webgpu) with the greedy reply WebAssembly gives, and falls back without it", async () => {
    const gpuBrowser = await chromium.launch({ executablePath: CHROMIUM, args: [...CHROMIUM_ARGS, "--enable-unsafe-webgpu"] });
    try {
      const reply = async (backend: string) => {
        const page = await gpuBrowser.newPage();
        await page.goto(`${server.url}?backend=${backend}`);
        assert.equal(await loadUrl(page, `${server.url}models/kjv.gguf`, false), "loaded", (await page.textContent("#error")) ?? "");
        const facts = (await page.textContent("#model-info"))!;
        await page.fill("#temperature", "0");
        // A decode step on SwiftShader takes most of a second: 8 tokens are enough to compare.
        const { text } = await ask(page, PROMPT, 8);
        await page.close();
        return { facts, text };
      };
      const onGpu = await reply("webgpu");
      assert.match(onGpu.facts, /backendwebgpu \(/);
      const onWasm = await reply("wasm");
      assert.match(onWasm.facts, /backendwasm/);
      // Left to choose, the page does not pick a software adapter (SwiftShader) over WebAssembly.
      assert.match((await reply("auto")).facts, /backendwasm \(not WebGPU: only a software WebGPU adapter \(swiftshader\)/);
      assert.ok(onGpu.text.length > 0);
      assert.equal(onGpu.text, onWasm.text);
    } finally {
      await gpuBrowser.close();
    }
    // The shared browser has no WebGPU: auto falls back to WebAssembly and says why.
    const page = await browser.newPage();
    await page.goto(server.url);
    assert.equal(await loadUrl(page, `${server.url}models/kjv.gguf`, false), "loaded");
    assert.match((await page.textContent("#model-info"))!, /backendwasm \(not WebGPU: (no WebGPU adapter|this browser has no WebGPU)\)/);
    assert.ok((await ask(page)).text.length > 0);
    await page.close();
  });

  it("reads a model larger than the browser's storage quota by range requests, and says so", async () => {
    const page = await browser.newPage();
    await page.goto(server.url);
    const cdp = await page.context().newCDPSession(page);
    await cdp.send("Storage.overrideQuotaForOrigin", { origin: new URL(server.url).origin, quotaSize: 1_000_000 });
    assert.equal(await loadUrl(page, `${server.url}models/kjv.gguf`, true), "loaded", (await page.textContent("#error")) ?? "");
    assert.match(
      (await page.textContent("#load-status"))!,
      /kjv\.gguf is not kept in this browser \(.*kjv\.gguf: (the browser lets this page store \d+ MiB more, the file has 5 MiB|the browser's storage quota ran out after \d+ MiB)\); it is read from the network instead/,
    );
    assert.equal((await ask(page)).text, expected);
    // Nothing was kept (the range requests themselves may be answered by the HTTP cache).
    const listing = await cacheListAfter(page, () => page.click("#clear-cache"));
    assert.match(listing, /^freed \d+\.\d MiB\. empty$/);
    assert.doesNotMatch(listing, /freed 4\.9/);
    await page.close();
  });

  it("runs on one thread, and says so, when the page is not cross-origin isolated", async () => {
    const plain = await startWebServer({ modelsDir: models, port: 0, isolate: false });
    try {
      const page = await browser.newPage();
      // A link with ?model= loads it at once.
      await page.goto(`${plain.url}?model=models/kjv.gguf`);
      assert.equal(await page.evaluate(() => crossOriginIsolated), false);
      assert.match((await page.textContent("#runtime-status"))!, /not cross-origin isolated: one thread/);
      await page.waitForFunction(() => document.body.dataset["model"] === "loaded", null, { timeout: 60_000 });
      assert.match((await page.textContent("#model-info"))!, /kernelswasm-relaxed \(1 thread\)/);
      assert.equal((await ask(page)).text, expected);
      await page.close();
    } finally {
      await plain.close();
    }
  });
});
