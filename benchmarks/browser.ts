/**
 * `npm run bench:web`: the same synthetic Gemma GGUF (a published Gemma 2, 3 or 4 shape, random
 * weights, the real 256k / 262k vocabulary) decoded in Node and in headless Chromium's model
 * worker, on 1 and 2 threads.
 * Browser figures are read off the chat page's own statistics line; Node's are taken the same way
 * (tokens after the first over the time after the first). Needs /usr/bin/chromium.
 *
 * Chromium also loads the model a third time from its Origin Private File System cache.
 *
 *   npm run bench:web -- [--shape 2b|gemma3-1b|gemma4-e2b|...] [--weights q8_0|q4_0|f16] [--tokens 32] [--runtimes node,chromium]
 *     [--backends wasm,webgpu]
 *
 * `--backends` picks the page's backend per Chromium run (?backend=): wasm (default) and/or webgpu,
 * whose figures are the adapter's (on a machine without a GPU, SwiftShader's: no GPU speed).
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import { parseArgs } from "node:util";
import { chromium, type Page } from "playwright-core";
import { loadModel } from "../src/gemma.js";
import { startWebServer } from "../src/server/web.js";
import { CHROMIUM, CHROMIUM_ARGS } from "../test/helpers/chromium.js";
import { gemmaShape, syntheticGguf } from "./synthetic-gguf.js";

const { values } = parseArgs({
  options: {
    shape: { type: "string", default: "2b" },
    weights: { type: "string", default: "q8_0" },
    tokens: { type: "string", default: "32" },
    runtimes: { type: "string", default: "node,chromium" },
    backends: { type: "string", default: "wasm" },
  },
});
const runtimes = values.runtimes.split(",");
const { shape, config } = gemmaShape(values.shape);
const tokens = Number(values.tokens);
const PROMPT = "Write a short poem about the sea.";
const path = await syntheticGguf(shape, config, values.weights);
const dir = dirname(path);
const file = basename(path);

interface Row {
  /** node, or chromium with the model read by range requests, downloaded into the OPFS cache, or read from it. */
  where: string;
  threads: number;
  loadSeconds: number;
  firstTokenSeconds: number;
  tokensPerSecond: number;
  tokens: number;
}
const rows: Row[] = [];

for (const threads of runtimes.includes("node") ? [1, 2] : []) {
  const started = performance.now();
  const model = await loadModel(join(dir, file), { threads });
  const loadSeconds = (performance.now() - started) / 1000;
  const generation = model.generate([{ role: "user", content: PROMPT }], { maxTokens: tokens, temperature: 0 });
  const t0 = performance.now();
  let first = 0;
  for await (const _ of generation) first ||= performance.now();
  const end = performance.now();
  rows.push({
    where: "node",
    threads,
    loadSeconds,
    firstTokenSeconds: (first - t0) / 1000,
    tokensPerSecond: (generation.completionTokens - 1) / ((end - first) / 1000),
    tokens: generation.completionTokens,
  });
  process.stderr.write(`node ×${threads} done\n`);
}

// A persistent profile, as a user's: a throwaway (incognito) one gets too little storage for a 2B.
const browser = runtimes.includes("chromium")
  ? await chromium.launchPersistentContext(mkdtempSync(join(tmpdir(), "gemma-ts-bench-profile-")), {
      executablePath: CHROMIUM,
      args: [...CHROMIUM_ARGS, "--enable-unsafe-webgpu"],
    })
  : null;

/** Loads the model in the page and sends the prompt; returns the page's own figures. */
async function browserRun(page: Page, url: string, cache: boolean, where: string): Promise<void> {
  await page.fill("#model-url", url);
  await page.setChecked("#use-cache", cache);
  await page.click("#load-url");
  await page.waitForFunction(() => document.body.dataset["model"] !== "loading", null, { timeout: 900_000 });
  if ((await page.getAttribute("body", "data-model")) !== "loaded")
    throw new Error(`browser load failed: ${await page.textContent("#error")}`);
  const loadSeconds = Number(/loaded in ([\d.]+) s/.exec((await page.textContent("#load-status"))!)![1]);
  const threads = Number(/\((\d+) threads?\)/.exec((await page.textContent("#model-info"))!)![1]);
  await page.fill("#temperature", "0");
  await page.fill("#max-tokens", String(tokens));
  await page.fill("#prompt", PROMPT);
  await page.click("#send");
  await page.locator(".message.model[data-done]").waitFor({ timeout: 900_000 });
  const stats = (await page.textContent("#reply-stats"))!;
  const m = /^(\d+) tokens · ([\d.]+) tokens\/s · first token ([\d.]+) s/.exec(stats)!;
  rows.push({ where, threads, loadSeconds, firstTokenSeconds: Number(m[3]), tokensPerSecond: Number(m[2]), tokens: Number(m[1]) });
  process.stderr.write(`${where} ×${threads} done\n`);
}

const backends = values.backends.split(",");
for (const isolate of browser ? [false, true] : []) {
  const server = await startWebServer({ modelsDir: dir, port: 0, isolate });
  const url = `${server.url}models/${file}`;
  for (const backend of isolate ? [] : backends.filter((b) => b !== "wasm")) {
    const page = await browser!.newPage();
    await page.goto(`${server.url}?backend=${backend}`);
    await browserRun(page, url, false, `chromium ${backend}, range requests`);
    await page.close();
  }
  if (!backends.includes("wasm")) {
    await server.close();
    continue;
  }
  const page = await browser!.newPage();
  await page.goto(`${server.url}?backend=wasm`);
  await browserRun(page, url, isolate, isolate ? "chromium, downloading to the cache" : "chromium, range requests");
  if (isolate) {
    // The download above went into the OPFS cache; a reload reads it from there.
    await page.reload();
    await browserRun(page, url, true, "chromium, from the cache");
    await page.click("#clear-cache");
    await page.waitForFunction(() => document.getElementById("cache-list")!.textContent!.startsWith("freed"));
  }
  await page.close();
  await server.close();
}
await browser?.close();

console.log(`${shape} ${values.weights} (synthetic weights), chat prompt, ${tokens} tokens greedy`);
console.log("| runtime | threads | load s | first token s | decode tokens/s |");
console.log("|---|---|---|---|---|");
for (const r of rows)
  console.log(
    `| ${r.where} | ${r.threads} | ${r.loadSeconds.toFixed(1)} | ${r.firstTokenSeconds.toFixed(2)} | ${r.tokensPerSecond.toFixed(2)} |`,
  );
console.log(JSON.stringify(rows));
process.exit(0);
