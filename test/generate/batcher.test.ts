/** DecodeBatcher with an asynchronous forward pass (what WebGPU gives): items run one at a time, results as run alone. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { DecodeBatcher } from "../../src/generate/batcher.js";
import { Sequence } from "../../src/generate/sequence.js";
import { loadModel } from "../../src/gemma.js";
import type { CausalLM } from "../../src/model/causal-lm.js";

describe("DecodeBatcher over an asynchronous forward pass", () => {
  it("never runs two passes at once and gives each sequence the logits it gets alone", async () => {
    const model = await loadModel(undefined, { kernels: "js" });
    const sync = model.forwardPass;
    let inFlight = 0;
    let most = 0;
    // The bundled model's pass behind a promise that resolves later, with no batched pass: as GpuGemmaForward.
    const async: CausalLM = {
      config: sync.config,
      createState: (options) => sync.createState(options),
      forward: () => {
        throw new Error("synchronous forward called");
      },
      forwardAsync: async (ids, state, logitsFor) => {
        inFlight++;
        most = Math.max(most, inFlight);
        await new Promise((resolve) => setTimeout(resolve, 2));
        const logits = sync.forward(ids, state, logitsFor);
        inFlight--;
        return logits;
      },
    };
    const prompts = [
      [2, 10, 11, 12, 13, 14],
      [2, 20, 21],
      [2, 30, 31, 32, 33, 34, 35, 36, 37],
    ];
    const batcher = new DecodeBatcher(async, 4);
    const together = await Promise.all(
      prompts.map(async (ids) => {
        const sequence = new Sequence(async);
        const first = await batcher.prefill(sequence, ids);
        const next = await batcher.feed(sequence, [40]);
        return [first, next];
      }),
    );
    assert.equal(most, 1, "one pass at a time");
    assert.ok(batcher.passes >= 2 * prompts.length, `${batcher.passes} passes`);
    for (const [i, ids] of prompts.entries()) {
      const alone = new Sequence(sync);
      const first = alone.prefill(ids);
      const next = alone.feed([40]);
      assert.deepEqual([...together[i]![0]!], [...first], `prompt ${i}`);
      assert.deepEqual([...together[i]![1]!], [...next], `prompt ${i}, next token`);
    }
  });
});
