/**
 * `npm run bench:grammar`: what constrained decoding costs. The same synthetic GGUF (a published
 * shape, the real vocabulary) decodes the same prompt greedily as free text and under a JSON
 * Schema, alternating, and the grammar's own per-token work (the mask XGrammar computes, applied
 * to the logits row, and accepting the token) is timed inside the constrained runs.
 *
 *   npm run bench:grammar -- [--shape 2b] [--weights q4_0] [--tokens 48] [--rounds 3] [--threads N]
 */
import { parseArgs } from "node:util";
import { loadModel } from "../src/gemma.js";
import { compileConstraint } from "../src/generate/grammar.js";
import { gemmaShape, syntheticGguf } from "./synthetic-gguf.js";

const { values } = parseArgs({
  options: {
    shape: { type: "string", default: "2b" },
    weights: { type: "string", default: "q4_0" },
    tokens: { type: "string", default: "48" },
    rounds: { type: "string", default: "3" },
    threads: { type: "string" },
  },
});
const { shape, config } = gemmaShape(values.shape);
const tokens = Number(values.tokens);
const path = await syntheticGguf(shape, config, values.weights);
const model = await loadModel(path, values.threads ? { threads: Number(values.threads) } : {});
const tokenizer = model.tokenizer!;
const SCHEMA = {
  type: "object",
  properties: {
    title: { type: "string", maxLength: 40 },
    year: { type: "integer", minimum: 1000, maximum: 2100 },
    tags: { type: "array", items: { enum: ["poem", "song", "story"] }, maxItems: 4 },
  },
  required: ["title", "year", "tags"],
};
const PROMPT = [{ role: "user" as const, content: "Describe a poem about the sea as JSON." }];

/** Seconds per generated token after the first (the prefill and the grammar's compile excluded). */
async function decode(constrained: boolean): Promise<{ perToken: number; count: number }> {
  const generation = model.generate(PROMPT, {
    temperature: 0,
    maxTokens: tokens,
    ...(constrained ? { responseFormat: { type: "json_schema" as const, schema: SCHEMA } } : {}),
  });
  let first = 0;
  let count = 0;
  for await (const _ of generation) {
    if (count++ === 0) first = performance.now();
  }
  return { perToken: (performance.now() - first) / 1000 / Math.max(1, count - 1), count };
}

/** The grammar's work alone per token, on a logits row of the model's width: mask + apply + accept. */
async function grammarWork(): Promise<{ perToken: number; count: number }> {
  const constraint = await compileConstraint(tokenizer, { type: "json_schema", schema: SCHEMA }, [...model.stopTokenIds], config.vocabSize);
  const logits = new Float32Array(tokenizer.vocabSize);
  let seed = 1;
  let spent = 0;
  let count = 0;
  for (; count < tokens; count++) {
    for (let i = 0; i < logits.length; i++) {
      seed = (seed * 1103515245 + 12345) >>> 0;
      logits[i] = (seed / 2 ** 32) * 10;
    }
    const start = performance.now();
    await constraint.restrict(logits);
    let best = 0;
    for (let i = 1; i < logits.length; i++) if (logits[i]! > logits[best]!) best = i;
    if (model.stopTokenIds.has(best)) break;
    constraint.accept(best);
    spent += performance.now() - start;
  }
  constraint.dispose();
  return { perToken: spent / 1000 / Math.max(1, count), count };
}

await decode(true); // compile once, warm both paths
const free: number[] = [];
const constrained: number[] = [];
const grammar: number[] = [];
for (let round = 0; round < Number(values.rounds); round++) {
  free.push((await decode(false)).perToken);
  constrained.push((await decode(true)).perToken);
  grammar.push((await grammarWork()).perToken);
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const [f, c, g] = [median(free), median(constrained), median(grammar)];
console.log(
  `${shape} ${values.weights} (synthetic weights, vocabulary ${tokenizer.vocabSize}), ${tokens} greedy tokens, medians of ${values.rounds} rounds`,
);
console.log("| decode | ms per token |");
console.log("|---|---|");
console.log(`| free text | ${(f * 1000).toFixed(2)} |`);
console.log(`| under the JSON Schema | ${(c * 1000).toFixed(2)} |`);
console.log(
  `| the grammar's own work (mask, apply, accept) | ${(g * 1000).toFixed(3)} (${((100 * g) / f).toFixed(1)}% of a free decode step) |`,
);
process.exit(0);
