import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { KvStorage } from "../../src/backend/kernels.js";
import { loadModel } from "../../src/gemma.js";
import type { GemmaConfig } from "../../src/model/gemma/config.js";
import type { GemmaForward } from "../../src/model/gemma/forward.js";
import { KvCache } from "../../src/model/kv-cache.js";
import type { RecurrentState, RecurrentGemmaForward } from "../../src/model/recurrent-gemma/forward.js";
import { FIXTURES } from "../helpers/random-model.js";

/** The kernels' storage, recording what it lends and gets back. */
function recording(storage: KvStorage) {
  const lent = new Set<Float32Array>();
  const given = new Set<Float32Array>();
  const spy: KvStorage = {
    allocate: (floats) => {
      const array = storage.allocate(floats);
      if (array) lent.add(array);
      return array;
    },
    release: (array) => {
      given.add(array);
      storage.release(array);
    },
  };
  return { spy, lent, given };
}

describe("releasing a decode state", () => {
  const ids = [2, 17, 5, 33, 8, 61, 4, 12, 9, 40];

  it("a KV cache gives every row back to the kernels' memory at once, and used again it gives the logits of a fresh one", async () => {
    const model = await loadModel(`${FIXTURES}tiny_a`, { kernels: "wasm" });
    const pass = model.forwardPass as GemmaForward;
    const { spy, lent, given } = recording(pass.kernels.kvStorage!);
    const state = new KvCache(pass.config as GemmaConfig, {}, spy);
    const expected = pass.forward(ids, state, "last").slice();
    const held = state.distinctLayers().flatMap((l) => [l.k, l.v]);
    assert.ok(held.every((a) => lent.has(a) && !given.has(a)) && state.bytes() > 0);
    state.release();
    assert.ok(
      held.every((a) => given.has(a)),
      "every row it held went back",
    );
    assert.equal(state.bytes(), 0);
    assert.equal(state.length, 0);
    assert.deepEqual([...pass.forward(ids, state, "last")], [...expected]);
  });

  it("a RecurrentGemma state gives its attention rings back and starts over", async () => {
    const model = await loadModel(`${FIXTURES}rg_tiny`, { kernels: "wasm" });
    const pass = model.forwardPass as RecurrentGemmaForward;
    const state = pass.createState() as RecurrentState;
    const expected = pass.forward(ids, state, "last").slice();
    state.release();
    assert.ok(state.kv.every((ring) => ring === null || ring.k.length === 0));
    assert.equal(state.length, 0);
    assert.deepEqual([...pass.forward(ids, state, "last")], [...expected]);
  });
});
