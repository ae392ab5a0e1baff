import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { geluExact, geluTanh } from "../../src/backend/js/elementwise.js";
import { GenerationError } from "../../src/errors.js";
import { loadModel } from "../../src/gemma.js";
import type { GemmaConfig } from "../../src/model/gemma/config.js";
import { embeddingNormalizer, GemmaForward, PROMPT_CHUNK } from "../../src/model/gemma/forward.js";
import { KvCache } from "../../src/model/kv-cache.js";
import { f32ToBf16 } from "../../src/weights/dtype.js";
import { FIXTURES, tinyGemma2Json, writeRandomModel } from "../helpers/random-model.js";

interface Fixture {
  input_ids: number[];
  logits: number[][];
  greedy: { generated_ids: number[]; step_logits: number[][] };
}

function maxAbsDiff(actual: Float32Array, expected: number[][] | Float32Array, offset = 0): number {
  const flat = expected instanceof Float32Array ? expected : expected.flat();
  let max = 0;
  for (let i = 0; i < flat.length; i++) max = Math.max(max, Math.abs(actual[offset + i]! - flat[i]!));
  return max;
}

for (const backend of ["js", "wasm"] as const) {
  describe(`forward pass against gemma_pytorch reference logits (${backend} backend)`, () => {
    for (const name of ["tiny_a", "tiny_b_27blike", "g1_tiny"]) {
      const fixture = JSON.parse(readFileSync(`${FIXTURES}${name}/fixture.json`, "utf8")) as Fixture;
      const loadOnBackend = (dir: string) => loadModel(dir, { kernels: backend });

      it(`${name}: prompt logits within 1e-2 of the reference`, async () => {
        const model = await loadOnBackend(`${FIXTURES}${name}`);
        const logits = await model.logits(fixture.input_ids);
        assert.equal(logits.length, fixture.input_ids.length * model.config.vocabSize);
        const diff = maxAbsDiff(logits, fixture.logits);
        assert.ok(diff <= 1e-2, `max |Δlogit| = ${diff}`);
      });

      it(`${name}: 16 greedy tokens through the KV cache equal the reference`, async () => {
        const model = await loadOnBackend(`${FIXTURES}${name}`);
        const generation = model.generate(fixture.input_ids, { temperature: 0, maxTokens: 16 });
        const ids: number[] = [];
        for await (const token of generation) ids.push(token.id);
        assert.deepEqual(ids, fixture.greedy.generated_ids);
        assert.equal(generation.finishReason, "length");
      });

      it(`${name}: decode-step logits match the reference step logits`, async () => {
        const model = await loadOnBackend(`${FIXTURES}${name}`);
        const sequence = model.createSequence();
        let logits = sequence.prefill(fixture.input_ids);
        let worst = 0;
        for (const [step, id] of fixture.greedy.generated_ids.entries()) {
          worst = Math.max(worst, maxAbsDiff(logits, [fixture.greedy.step_logits[step]!]));
          logits = sequence.feed([id]);
        }
        assert.ok(worst <= 1e-2, `max |Δlogit| over decode steps = ${worst}`);
      });
    }
  });
}

describe("long prompts run in chunks through the cache", () => {
  // Window 6, 300 tokens: chunks of 128, 128 and 44, each reading the keys of those before.
  const dir = writeRandomModel(tinyGemma2Json({ sliding_window: 6, max_position_embeddings: 512 }), 13);
  const ids = Array.from({ length: 300 }, (_, i) => (i === 0 ? 2 : (i * 29 + 7) % 96));

  for (const backend of ["js", "wasm"] as const) {
    it(`${backend}: no pass holds more than ${PROMPT_CHUNK} tokens, and the logits equal one pass over the whole prompt`, async () => {
      const model = await loadModel(dir, { kernels: backend });
      const pass = model.forwardPass as GemmaForward;
      const rowsPerMatmul: number[] = [];
      const kernels = new Proxy(pass.kernels, {
        get: (target, key, receiver) =>
          key === "matmul"
            ? (out: Float32Array, x: Float32Array, w: unknown, seqLen: number) => {
                rowsPerMatmul.push(seqLen);
                return Reflect.apply(target.matmul, target, [out, x, w, seqLen]);
              }
            : Reflect.get(target, key, receiver),
      });
      const chunked = new GemmaForward(pass.config, pass.weights, kernels);
      const whole = pass.forward(ids, null, "all");
      const vocab = model.config.vocabSize;
      const last = chunked.forward(ids, chunked.createState(), "last");
      assert.ok(rowsPerMatmul.length > 0 && Math.max(...rowsPerMatmul) === PROMPT_CHUNK, `rows per matmul: ${Math.max(...rowsPerMatmul)}`);
      assert.ok(maxAbsDiff(last, whole.subarray((ids.length - 1) * vocab)) <= 1e-4);
      const all = chunked.forward(ids, chunked.createState(), "all");
      assert.ok(maxAbsDiff(all, whole) <= 1e-4, `${maxAbsDiff(all, whole)}`);
    });
  }

  it("a bad token in a late chunk fails before the cache moves", async () => {
    const model = await loadModel(dir);
    const state = model.forwardPass.createState();
    assert.throws(() => model.forwardPass.forward([...ids.slice(0, 200), 96], state, "last"), /token id 96 is outside/);
    assert.equal(state.length, 0);
  });
});

describe("sliding window and KV cache", () => {
  // Window 6 and 64-token sequences: more than 10x the window.
  const dir = writeRandomModel(tinyGemma2Json({ sliding_window: 6 }), 11);
  const ids = Array.from({ length: 64 }, (_, i) => (i === 0 ? 2 : (i * 37 + 11) % 96));

  it("token-by-token decode far past the window matches a full recompute at every position", async () => {
    const model = await loadModel(dir);
    const full = await model.logits(ids);
    const sequence = model.createSequence();
    const vocab = model.config.vocabSize;
    let worst = 0;
    for (let i = 0; i < ids.length; i++) {
      const step = sequence.feed([ids[i]!]);
      worst = Math.max(worst, maxAbsDiff(step, full.subarray(i * vocab, (i + 1) * vocab)));
    }
    assert.ok(worst <= 1e-4, `max |Δlogit| cache vs recompute = ${worst}`);
    // Local layers hold only the window; global layers every position.
    const layers = (sequence.cache as KvCache).layers;
    assert.equal(layers[0]!.ringSize, 6);
    assert.equal(layers[0]!.k.length, 6 * model.config.nKvHeads * model.config.headDim);
    assert.equal(layers[1]!.k.length >= 64 * model.config.nKvHeads * model.config.headDim, true);
    // The default (wasm) kernels lend the rows from their own memory, where attention reads them in place.
    const { kernels } = model.forwardPass as GemmaForward;
    assert.match(kernels.name, /^wasm/);
    for (const layer of layers) assert.ok(layer.k.buffer instanceof SharedArrayBuffer && layer.v.buffer instanceof SharedArrayBuffer);
  });

  it("chunked prefill longer than the ring buffer matches a full recompute", async () => {
    const model = await loadModel(dir);
    const full = await model.logits(ids);
    const sequence = model.createSequence();
    const vocab = model.config.vocabSize;
    sequence.feed(ids.slice(0, 20));
    const afterChunk = sequence.feed(ids.slice(20, 50));
    const last = sequence.feed(ids.slice(50));
    assert.ok(maxAbsDiff(afterChunk, full.subarray(49 * vocab, 50 * vocab)) <= 1e-4);
    assert.ok(maxAbsDiff(last, full.subarray(63 * vocab, 64 * vocab)) <= 1e-4);
  });

  it("greedy generation past the window equals greedy on full recomputes", async () => {
    const model = await loadModel(dir);
    const prompt = ids.slice(0, 8);
    const cached: number[] = [];
    for await (const t of model.generate(prompt, { temperature: 0, maxTokens: 60 })) cached.push(t.id);
    const recomputed: number[] = [];
    const context = [...prompt];
    const vocab = model.config.vocabSize;
    for (let n = 0; n < cached.length; n++) {
      const all = await model.logits(context);
      const row = all.subarray((context.length - 1) * vocab);
      let best = 0;
      for (let i = 1; i < vocab; i++) if (row[i]! > row[best]!) best = i;
      recomputed.push(best);
      context.push(best);
    }
    assert.equal(cached.length, 60);
    assert.deepEqual(cached, recomputed);
  });

  it("rewinds within the ring buffer and fails clearly beyond it", async () => {
    const model = await loadModel(dir);
    const full = await model.logits(ids);
    const vocab = model.config.vocabSize;
    const exact = new KvCache(model.config as GemmaConfig);
    model.forwardPass.forward(ids.slice(0, 40), exact, "last");
    assert.equal(exact.canRewindTo(39), true);
    assert.equal(exact.canRewindTo(38), false);
    assert.throws(
      () => exact.rewindTo(30),
      (e: unknown) => e instanceof GenerationError && /ring buffer has already dropped/.test(e.message),
    );
    assert.throws(() => exact.rewindTo(41), /outside the cached range/);

    const slack = new KvCache(model.config as GemmaConfig, { rewindSlack: 8 });
    model.forwardPass.forward(ids.slice(0, 40), slack, "last");
    assert.equal(slack.canRewindTo(30), false);
    slack.rewindTo(31);
    const again = model.forwardPass.forward(ids.slice(31, 45), slack, "last");
    assert.ok(maxAbsDiff(again, full.subarray(44 * vocab, 45 * vocab)) <= 1e-4);
  });

  it("refuses positions beyond the context window", async () => {
    const model = await loadModel(writeRandomModel(tinyGemma2Json({ max_position_embeddings: 16 }), 3));
    await assert.rejects(model.logits(new Array(17).fill(5)), /sequence of 17 tokens exceeds the model's context of 16 positions/);
    await assert.rejects(model.logits([2, 999]), /token id 999 is outside the vocabulary of 96/);
  });
});

describe("numerics details", () => {
  it("keeps bf16 weights 2 bytes wide and computes like f32 weights holding the same values", async () => {
    const toBf16 = (d: Float32Array) => {
      const bits = new Uint16Array(d.length);
      for (let i = 0; i < d.length; i++) bits[i] = f32ToBf16(d[i]!);
      return bits;
    };
    const widened = (bits: Uint16Array) => new Float32Array(Uint32Array.from(bits, (b) => b << 16).buffer);
    const json = tinyGemma2Json();
    const bf16Dir = writeRandomModel(json, 5, (ts) => ts.map((t) => ({ ...t, dtype: "bf16", data: toBf16(t.data as Float32Array) })));
    const f32Dir = writeRandomModel(json, 5, (ts) => ts.map((t) => ({ ...t, data: widened(toBf16(t.data as Float32Array)) })));
    const bf16 = await loadModel(bf16Dir);
    const f32 = await loadModel(f32Dir);
    const weightsOf = (m: typeof bf16) => (m.forwardPass as GemmaForward).weights;
    assert.ok(weightsOf(bf16).embedding.data instanceof Uint16Array);
    assert.equal(weightsOf(bf16).layers[0]!.gate.data.byteLength * 2, weightsOf(f32).layers[0]!.gate.data.byteLength);
    assert.ok(bf16.weightBytes < 0.55 * f32.weightBytes);
    const ids = [2, 5, 9, 40, 41, 7];
    assert.ok(maxAbsDiff(await bf16.logits(ids), await f32.logits(ids)) <= 1e-5);
  });

  it("uses the tanh GELU, which differs measurably from the exact one (pitfall 6)", () => {
    assert.ok(Math.abs(geluTanh(1) - 0.8411919906082768) < 1e-12);
    assert.ok(Math.abs(geluExact(1) - 0.8413447460685429) < 1e-6);
    assert.ok(Math.abs(geluTanh(-3) - geluExact(-3)) > 1e-4);
  });

  it("rounds sqrt(d_model) to the activation dtype on request (GEMMA2.md §2.1)", () => {
    assert.equal(embeddingNormalizer(2304, "f32"), 48);
    assert.equal(embeddingNormalizer(3584, "bf16"), 59.75);
    assert.equal(embeddingNormalizer(4608, "bf16"), 68);
    assert.equal(embeddingNormalizer(4608, "f16"), 67.875);
    assert.equal(embeddingNormalizer(3072, "bf16"), 55.5);
  });
});
