/**
 * Last step of scripts/build-demo-model.sh: writes the distilled student and its vocabulary as one
 * float32 GGUF (the bundled model), measures it and, beside it, the teacher and the next-token
 * student of the same size (validation perplexity against a unigram baseline, held-out perplexity
 * on 1 Samuel 1-3, which no model saw), draws the loss curves as SVG and prints the numbers and
 * sample outputs that docs/demo-model.md reports.
 *
 *   node --import tsx scripts/export-demo-model.ts runs/demo models/gemma-ts-kjv.gguf
 */
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { execFileSync } from "node:child_process";
import type { GemmaConfig } from "../src/model/gemma/config.js";
import { loadConfig, loadModel, type GemmaModel } from "../src/gemma.js";
import { perplexity } from "../src/eval/perplexity.js";
import { encodeGgufModel } from "../src/model/gguf-export.js";
import { GEMMA_CHAT_TEMPLATE } from "../src/tokenizer/chat-template.js";
import { parseSpmVocab } from "../src/tokenizer/spm-vocab.js";
import { loadTextDataset } from "../src/train/data.js";
import { openCheckpointFolder } from "../src/weights/checkpoint-folder.js";

const [runDir = "runs/demo", out = "models/gemma-ts-kjv.gguf"] = process.argv.slice(2);
const studentDir = join(runDir, "student");
const vocab = parseSpmVocab(readFileSync("data/kjv-spm.vocab", "utf8"));
const config = (await loadConfig(studentDir)) as GemmaConfig;
const ckpt = await openCheckpointFolder(studentDir);
mkdirSync(dirname(out), { recursive: true });
writeFileSync(
  out,
  await encodeGgufModel(ckpt, config, {
    matrixType: "F32",
    vocabulary: { ...vocab, chatTemplate: GEMMA_CHAT_TEMPLATE },
    name: "gemma-ts KJV demo (distilled Gemma 2 architecture)",
  }),
);
await ckpt.close();
console.log(`wrote ${out}: ${(statSync(out).size / 1e6).toFixed(2)} MB`);

const model = await loadModel(out);
const tokenizer = model.tokenizer!;
const data = await loadTextDataset("data/kjv-train.txt", tokenizer, 128);
// Held out entirely: 1 Samuel 1-3 (after Ruth; the training text ends at Ruth 4:22).
execFileSync("sh", ["scripts/prepare-kjv.sh", "data/kjv-heldout.txt", "1Sa1:1-1Sa3:21"], { stdio: "ignore" });
const heldOut = tokenizer.encode(readFileSync("data/kjv-heldout.txt", "utf8"), { parseControlTokens: false });

/** Validation perplexity (the held-out windows of the training text, scored as training scored them) and 1 Samuel 1-3's. */
async function measure(m: GemmaModel): Promise<{ validation: number; heldOut: number; tokens: number }> {
  let nll = 0;
  let count = 0;
  for (const w of data.validation) {
    const logits = await m.logits(Array.from(w.subarray(0, 128)));
    for (let t = 0; t < 128; t++) {
      const row = logits.subarray(t * config.vocabSize, (t + 1) * config.vocabSize);
      const max = row.reduce((a, b) => Math.max(a, b), -Infinity);
      const logSum = max + Math.log(row.reduce((sum, v) => sum + Math.exp(v - max), 0));
      nll += logSum - row[w[t + 1]!]!;
      count++;
    }
  }
  const held = await perplexity(m, heldOut, { context: 256, stride: 128 });
  return { validation: Math.exp(nll / count), heldOut: held.perplexity, tokens: count };
}

// Unigram baseline: token frequencies of the training windows (add-one smoothed), scored on the same tokens.
const counts = new Float64Array(config.vocabSize).fill(1);
for (const w of data.train) for (const id of w.subarray(1)) counts[id]!++;
const total = counts.reduce((a, b) => a + b, 0);
let unigram = 0;
let unigramCount = 0;
for (const w of data.validation) {
  for (const id of w.subarray(1)) {
    unigram -= Math.log(counts[id]! / total);
    unigramCount++;
  }
}

const shipped = await measure(model);
console.log(
  `shipped student: validation perplexity ${shipped.validation.toFixed(2)} per token over ${shipped.tokens} tokens; unigram baseline ${Math.exp(unigram / unigramCount).toFixed(2)}`,
);
console.log(`shipped student: held-out perplexity (1 Samuel 1-3, ${heldOut.length} tokens): ${shipped.heldOut.toFixed(2)}`);
for (const other of ["teacher", "student-alpha-1", "student-next-token"]) {
  const dir = join(runDir, other);
  if (!existsSync(dir)) continue;
  const r = await measure(await loadModel(dir));
  console.log(`${other}: validation perplexity ${r.validation.toFixed(2)}, held-out perplexity (1 Samuel 1-3) ${r.heldOut.toFixed(2)}`);
}

for (const prompt of ["In the beginning", "And the LORD said unto Moses,", "And it came to pass", "Blessed be"]) {
  const text = await model.generate(prompt, { maxTokens: 48, temperature: 0.7, topK: 40, seed: 7 }).complete();
  console.log(`\n> ${prompt}${text}`);
}

// Loss curves: teacher and student, train and validation, per step.
interface Log {
  step: number;
  trainLoss: number;
  validationLoss: number | null;
}
const logOf = (dir: string): Log[] =>
  readFileSync(join(runDir, dir, "train_log.jsonl"), "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as Log);
const series = [
  { name: "teacher, train (next-token)", log: logOf("teacher"), key: "trainLoss" as const, color: "#9ab" },
  { name: "teacher, validation", log: logOf("teacher"), key: "validationLoss" as const, color: "#246" },
  { name: "student (alpha 0.5), train", log: logOf("student"), key: "trainLoss" as const, color: "#e9a" },
  { name: "student (alpha 0.5), validation", log: logOf("student"), key: "validationLoss" as const, color: "#a24" },
  ...(existsSync(join(runDir, "student-alpha-1"))
    ? [{ name: "student (alpha 1), validation", log: logOf("student-alpha-1"), key: "validationLoss" as const, color: "#c80" }]
    : []),
  ...(existsSync(join(runDir, "student-next-token"))
    ? [{ name: "next-token student, validation", log: logOf("student-next-token"), key: "validationLoss" as const, color: "#2a4" }]
    : []),
];
const W = 720;
const H = 400;
const pad = 50;
const maxStep = Math.max(...series.flatMap((s) => s.log.map((l) => l.step)));
const values = series.flatMap((s) => s.log.map((l) => l[s.key]).filter((v): v is number => v !== null));
const [lo, hi] = [Math.floor(Math.min(...values)), Math.ceil(Math.min(Math.max(...values), 9))];
const x = (step: number) => pad + ((W - 2 * pad) * step) / maxStep;
const y = (v: number) => H - pad - ((H - 2 * pad) * (Math.min(v, hi) - lo)) / (hi - lo);
let svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12"><rect width="100%" height="100%" fill="white"/>`;
svg += `<line x1="${pad}" y1="${H - pad}" x2="${W - pad}" y2="${H - pad}" stroke="black"/><line x1="${pad}" y1="${pad}" x2="${pad}" y2="${H - pad}" stroke="black"/>`;
for (let v = lo; v <= hi; v++)
  svg += `<text x="${pad - 8}" y="${y(v) + 4}" text-anchor="end">${v}</text><line x1="${pad}" y1="${y(v)}" x2="${W - pad}" y2="${y(v)}" stroke="#eee"/>`;
for (let s = 0; s <= maxStep; s += 100) svg += `<text x="${x(s)}" y="${H - pad + 16}" text-anchor="middle">${s}</text>`;
svg += `<text x="${W / 2}" y="${H - 10}" text-anchor="middle">step</text><text x="14" y="${H / 2}" transform="rotate(-90 14 ${H / 2})" text-anchor="middle">loss (nats/token)</text>`;
series.forEach((s, i) => {
  const points = s.log.filter((l) => l[s.key] !== null).map((l) => `${x(l.step).toFixed(1)},${y(l[s.key]!).toFixed(1)}`);
  svg += `<polyline fill="none" stroke="${s.color}" stroke-width="${s.key === "validationLoss" ? 2.5 : 1}" points="${points.join(" ")}"/>`;
  svg += `<rect x="${W - 290}" y="${pad + 18 * i - 9}" width="12" height="3" fill="${s.color}"/><text x="${W - 272}" y="${pad + 18 * i - 4}">${s.name}</text>`;
});
writeFileSync("docs/demo-model-loss.svg", `${svg}</svg>\n`);
console.log("\nwrote docs/demo-model-loss.svg");
process.exit(0);
