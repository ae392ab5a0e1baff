/**
 * `npm run bench:web`: the same synthetic Gemma 2 GGUF (a published shape, random weights, the real
 * 256k vocabulary) decoded in Node and in headless Chromium's model worker, on 1 and 2 threads.
 * Browser figures are read off the chat page's own statistics line; Node's are taken the same way
 * (tokens after the first over the time after the first). Needs /usr/bin/chromium.
 *
 *   npm run bench:web -- [--shape 2b] [--weights q8_0|q4_0|f16] [--tokens 32]
 */
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { chromium } from "playwright-core";
import { BENCH_SHAPES, SHAPE_ALIASES } from "../src/bench/run.js";
import { SyntheticSource } from "../src/bench/synthetic.js";
import type { GemmaConfig } from "../src/config.js";
import { loadModel } from "../src/gemma.js";
import { encodeGgufModel, type GgufMatrixType } from "../src/model/gguf-export.js";
import { startWebServer } from "../src/server/web.js";
import { gemmaGgufVocab } from "../test/helpers/tokenizer.js";

const { values } = parseArgs({ options: { shape: { type: "string", default: "2b" }, weights: { type: "string", default: "q8_0" }, tokens: { type: "string", default: "32" } } });
const shape = SHAPE_ALIASES[values.shape] ?? values.shape;
const config = BENCH_SHAPES[shape] as GemmaConfig | undefined;
if (!config || config.family !== "gemma2") throw new Error(`--shape must be a Gemma 2 shape (${Object.keys(SHAPE_ALIASES).join(", ")})`);
const matrixType = values.weights.toUpperCase() as GgufMatrixType;
if (!["Q8_0", "Q4_0", "F16"].includes(matrixType)) throw new Error("--weights must be q8_0, q4_0 or f16");
const tokens = Number(values.tokens);
const PROMPT = "Write a short poem about the sea.";

const dir = join(tmpdir(), "gemma-ts-bench-web");
const file = `${shape}-${values.weights}.gguf`;
mkdirSync(dir, { recursive: true });
if (!existsSync(join(dir, file))) {
  process.stderr.write(`writing ${file} (synthetic weights, the Gemma vocabulary)…\n`);
  const vocabulary = gemmaGgufVocab();
  writeFileSync(join(dir, file), await encodeGgufModel(new SyntheticSource(config, 1), { ...config, vocabSize: vocabulary.pieces.length }, { matrixType, vocabulary }));
}

interface Row {
  where: string;
  threads: number;
  loadSeconds: number;
  firstTokenSeconds: number;
  tokensPerSecond: number;
  tokens: number;
}
const rows: Row[] = [];

for (const threads of [1, 2]) {
  const started = performance.now();
  const model = await loadModel(join(dir, file), { threads });
  const loadSeconds = (performance.now() - started) / 1000;
  const generation = model.generate([{ role: "user", content: PROMPT }], { maxTokens: tokens, temperature: 0 });
  const t0 = performance.now();
  let first = 0;
  for await (const _ of generation) first ||= performance.now();
  const end = performance.now();
  rows.push({ where: "node", threads, loadSeconds, firstTokenSeconds: (first - t0) / 1000, tokensPerSecond: (generation.completionTokens - 1) / ((end - first) / 1000), tokens: generation.completionTokens });
  process.stderr.write(`node ×${threads} done\n`);
}

const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: ["--no-sandbox", "--headless", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"] });
for (const isolate of [false, true]) {
  const server = await startWebServer({ modelsDir: dir, port: 0, isolate });
  const page = await browser.newPage();
  await page.goto(server.url);
  await page.fill("#model-url", `${server.url}models/${file}`);
  await page.setChecked("#use-cache", false);
  await page.click("#load-url");
  await page.waitForFunction(() => document.body.dataset["model"] !== "loading", null, { timeout: 600_000 });
  if ((await page.getAttribute("body", "data-model")) !== "loaded") throw new Error(`browser load failed: ${await page.textContent("#error")}`);
  const loadSeconds = Number(/loaded in ([\d.]+) s/.exec((await page.textContent("#load-status"))!)![1]);
  const threads = Number(/\((\d+) threads?\)/.exec((await page.textContent("#model-info"))!)![1]);
  await page.fill("#temperature", "0");
  await page.fill("#max-tokens", String(tokens));
  await page.fill("#prompt", PROMPT);
  await page.click("#send");
  await page.locator(".message.model[data-done]").waitFor({ timeout: 600_000 });
  const stats = (await page.textContent("#reply-stats"))!;
  const m = /^(\d+) tokens · ([\d.]+) tokens\/s · first token ([\d.]+) s/.exec(stats)!;
  rows.push({ where: "chromium", threads, loadSeconds, firstTokenSeconds: Number(m[3]), tokensPerSecond: Number(m[2]), tokens: Number(m[1]) });
  process.stderr.write(`chromium ×${threads} done\n`);
  await page.close();
  await server.close();
}
await browser.close();

console.log(`${shape} ${values.weights} (synthetic weights), chat prompt, ${tokens} tokens greedy`);
console.log("| runtime | threads | load s | first token s | decode tokens/s |");
console.log("|---|---|---|---|---|");
for (const r of rows) console.log(`| ${r.where} | ${r.threads} | ${r.loadSeconds.toFixed(1)} | ${r.firstTokenSeconds.toFixed(2)} | ${r.tokensPerSecond.toFixed(2)} |`);
console.log(JSON.stringify(rows));
process.exit(0);
