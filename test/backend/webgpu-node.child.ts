/**
 * Run by webgpu-node.test.ts in its own process (Dawn crashes now and then): a fixture loaded with
 * `kernels: "webgpu"`, its logits and 16 greedy tokens against the reference's; prints one JSON line.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { loadModel } from "../../src/gemma.js";
import { FIXTURES } from "../helpers/random-model.js";

const name = process.argv[2]!;
const fx = JSON.parse(readFileSync(join(FIXTURES, name, "fixture.json"), "utf8")) as {
  input_ids: number[];
  logits: number[][];
  greedy: { prompt_ids?: number[]; generated_ids: number[] };
};
const debug: string[] = [];
const model = await loadModel(join(FIXTURES, name), { kernels: "webgpu", onDebug: (m) => debug.push(m) });
const logits = await model.logits(fx.input_ids);
const expected = fx.logits.flat();
let maxDiff = 0;
for (let i = 0; i < expected.length; i++) maxDiff = Math.max(maxDiff, Math.abs(logits[i]! - expected[i]!));
const greedy: number[] = [];
for await (const t of model.generate(fx.greedy.prompt_ids ?? fx.input_ids, { temperature: 0, maxTokens: 16 })) greedy.push(t.id);
process.stdout.write(
  `${JSON.stringify({ name, forward: model.forwardPass.constructor.name, debug, maxDiff, greedy, expected: fx.greedy.generated_ids })}\n`,
);
// Dawn may keep the process alive; the result is out.
process.exit(0);
