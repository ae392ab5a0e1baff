import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { jsKernels } from "../../src/backend/js/index.js";
import type { Kernels, Weight } from "../../src/backend/kernels.js";
import { WasmArena } from "../../src/backend/wasm/arena.js";
import { relaxedSimdSupported } from "../../src/backend/wasm/features.js";
import { GemmaError } from "../../src/errors.js";
import { createWasmKernels } from "../../src/backend/wasm/index.js";
import { KvArena } from "../../src/backend/wasm/kv-arena.js";
import type { WasmHost } from "../../src/backend/wasm/host.js";
import { instantiate } from "../../src/backend/wasm/module.js";
import { kernelModule, nodeWasmHost } from "../../src/backend/wasm/node-host.js";
import { Rng } from "../../src/generate/rng.js";
import { f32ToBf16, f32ToF16 } from "../../src/weights/dtype.js";
import { dequantizeQ4_0Row } from "../../src/weights/q4_0.js";
import { dequantizeQ8_0Row } from "../../src/weights/q8_0.js";
import { ACTIVATION_K, ACTIVATION_Q8, ACTIVATION_SPLIT, PROMPT_TILE, QK } from "../../src/weights/block-layout.js";
import { quantizeActivationRowK } from "../../src/backend/js/matmul-kquant.js";
import { quantizeActivationRow } from "../../src/backend/js/matmul-quantized.js";
import { toBlocks } from "../../src/weights/matrix-rows.js";

const rng = new Rng(9);
/** Node ≥ 22 and Chromium have relaxed SIMD; Node 20 runs the plain kernels for both settings (features.ts). */
const RELAXED = relaxedSimdSupported();
if (Number(process.versions.node.split(".")[0]) >= 22) assert.ok(RELAXED, "Node >= 22 has relaxed SIMD");
const randomF32 = (n: number) => Float32Array.from({ length: n }, () => rng.next() * 2 - 1);

function randomWeight(dtype: Weight["dtype"], rows: number, cols: number): Weight {
  const values = randomF32(rows * cols);
  if (dtype === "f32") return { dtype, rows, cols, data: values };
  if (dtype === "q8_0") return { dtype, rows, cols, data: toBlocks(values, "f32", rows, cols, "q8_0") };
  if (dtype === "q4_0") return { dtype, rows, cols, data: toBlocks(values, "f32", rows, cols, "q4_0") };
  const convert = dtype === "bf16" ? f32ToBf16 : f32ToF16;
  return { dtype, rows, cols, data: Uint16Array.from(values, convert) };
}

/** Kernels holding an arena (one small matrix adopted), so every kernel runs in WebAssembly; 2 threads: started. */
async function startedKernels(threads: 1 | 2): Promise<Kernels> {
  const kernels = await createWasmKernels({ host: nodeWasmHost, threads });
  kernels.adopt!([randomWeight("f32", 4, 4)]);
  await kernels.ready!();
  return kernels;
}

function maxRelativeDiff(a: Float32Array, b: Float32Array): number {
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!) / Math.max(1, Math.abs(b[i]!)));
  return worst;
}

/** Adopts a random weight into fresh wasm kernels and checks its matmul against the TS reference. */
async function checkAgainstReference(
  dtype: Weight["dtype"],
  rows: number,
  cols: number,
  seqLen: number,
  relaxedSimd = true,
  tolerance = 1e-5,
) {
  const wasm = await createWasmKernels({ host: nodeWasmHost, relaxedSimd });
  const w = randomWeight(dtype, rows, cols);
  const reference = structuredClone(w);
  wasm.adopt!([w]);
  const x = randomF32(seqLen * cols);
  const expected = new Float32Array(seqLen * rows);
  const actual = new Float32Array(seqLen * rows);
  jsKernels.matmul(expected, x, reference, seqLen);
  wasm.matmul(actual, x, w, seqLen);
  assert.ok(maxRelativeDiff(actual, expected) <= tolerance, `max relative diff ${maxRelativeDiff(actual, expected)}`);
  return { w, reference, x, actual, wasm };
}

describe("WebAssembly SIMD kernels against the TypeScript reference", () => {
  // Sizes that are not multiples of the SIMD width (4) or of the 4-row block.
  const shapes: [number, number, number][] = [
    [1, 1, 1],
    [7, 13, 3],
    [4, 16, 1],
    [33, 67, 5],
    [130, 257, 2],
  ];
  // Float matrices whose cols are a multiple of 4 are packed in groups of four rows (float-rows.ts):
  // odd row counts (a row-major last group), odd chunk counts (one token's two-chunk steps), and
  // token counts odd and even (two-token tiles).
  const packedShapes: [number, number, number][] = [
    [4, 8, 1],
    [7, 12, 3],
    [9, 16, 4],
    [33, 68, 5],
    [130, 256, 2],
    [6, 2308, 1],
  ];
  for (const dtype of ["f32", "bf16", "f16"] as const) {
    for (const [rows, cols, seqLen] of [...shapes, ...packedShapes]) {
      it(`matmul ${dtype} [${rows}x${cols}] x ${seqLen} tokens`, async () => {
        const { w, reference, x, actual, wasm } = await checkAgainstReference(dtype, rows, cols, seqLen);
        // A token's results do not depend on the tokens beside it (decode gives a prompt's logits).
        for (let s = 0; s < seqLen; s++) {
          const one = new Float32Array(rows);
          wasm.matmul(one, x.subarray(s * cols, (s + 1) * cols), w, 1);
          assert.deepEqual([...one], [...actual.subarray(s * rows, (s + 1) * rows)], `token ${s} alone`);
        }
        if (cols % 4 !== 0 || rows < 4) assert.deepEqual([...w.data], [...reference.data], "row-major as given");
        else assert.notDeepEqual([...w.data], [...reference.data], "packed in groups of four rows");
        const sorted = (a: Weight["data"]) => [...a].sort((p, q) => p - q);
        assert.deepEqual(sorted(w.data), sorted(reference.data), "the same values, moved");
      });
    }
  }

  // Q8_0 rows are whole 32-value blocks; rows still odd.
  for (const [rows, cols, seqLen] of [
    [1, 32, 1],
    [7, 64, 3],
    [33, 96, 5],
    [130, 288, 2],
  ] as [number, number, number][]) {
    for (const relaxed of [true, false]) {
      it(`matmul q8_0 [${rows}x${cols}] x ${seqLen} tokens (int8 activations, as llama.cpp), ${relaxed ? "relaxed SIMD" : "plain SIMD"}`, async () => {
        const { w, reference, x, actual } = await checkAgainstReference("q8_0", rows, cols, seqLen, relaxed);
        assert.ok(w.data.buffer !== reference.data.buffer, "moved into wasm memory");
        // And close to the float product: 8-bit weights and activations, relative error well under 2%.
        const exact = new Float32Array(seqLen * rows);
        const floats = new Float32Array(rows * cols);
        for (let r = 0; r < rows; r++) dequantizeQ8_0Row(reference.data as Uint8Array, r, cols, floats.subarray(r * cols, (r + 1) * cols));
        jsKernels.matmul(exact, x, { dtype: "f32", rows, cols, data: floats }, seqLen);
        let worst = 0;
        for (let i = 0; i < exact.length; i++) worst = Math.max(worst, Math.abs(actual[i]! - exact[i]!));
        assert.ok(worst <= 0.02 * Math.sqrt(cols / 3), `activation quantization error ${worst}`);
      });
    }
  }

  for (const [rows, cols, seqLen] of [
    [1, 32, 1],
    [7, 64, 3],
    [130, 288, 2],
  ] as [number, number, number][]) {
    for (const relaxed of [true, false]) {
      it(`matmul q4_0 [${rows}x${cols}] x ${seqLen} tokens, ${relaxed ? "relaxed SIMD" : "plain SIMD"}`, async () => {
        const { reference, x, actual } = await checkAgainstReference("q4_0", rows, cols, seqLen, relaxed);
        const floats = new Float32Array(rows * cols);
        for (let r = 0; r < rows; r++) dequantizeQ4_0Row(reference.data as Uint8Array, r, cols, floats.subarray(r * cols, (r + 1) * cols));
        const exact = new Float32Array(seqLen * rows);
        jsKernels.matmul(exact, x, { dtype: "f32", rows, cols, data: floats }, seqLen);
        let worst = 0;
        for (let i = 0; i < exact.length; i++) worst = Math.max(worst, Math.abs(actual[i]! - exact[i]!));
        assert.ok(worst <= 0.02 * Math.sqrt(cols / 3), `activation quantization error ${worst}`);
      });
    }
  }

  // Wide rows: a prompt's activations no longer fit the kernels' cache chunk (8 tokens here), so
  // tokens run in several chunks, the last one odd. The kernels add 288 block products in f32
  // (the reference in f64): rounding alone reaches ~288 · 2^-24 of the terms' magnitude.
  for (const dtype of ["q8_0", "q4_0"] as const) {
    for (const relaxed of [true, false]) {
      it(`matmul ${dtype} [5x9216] x 19 tokens in chunks, ${relaxed ? "relaxed SIMD" : "plain SIMD"}`, async () => {
        await checkAgainstReference(dtype, 5, 9216, 19, relaxed, 5e-5);
      });
    }
  }

  it("RoPE, residual and bias adds and the causal convolution in WebAssembly equal the TypeScript reference bit for bit", async () => {
    const wasm = await startedKernels(1);
    const same = (a: Float32Array, b: Float32Array, label: string) =>
      assert.ok(a.length === b.length && a.every((v, i) => Object.is(v, b[i])), label);
    const wide = (n: number) => Float32Array.from({ length: n }, () => (rng.next() * 2 - 1) * 10 ** (rng.next() * 6 - 3));
    // [seqLen, nHeads, headDim, rotated half, startPos]: all dims rotated, an odd half, RecurrentGemma's first half only.
    for (const [seqLen, nHeads, headDim, half, startPos] of [
      [1, 8, 256, 128, 2048],
      [5, 3, 10, 5, 7],
      [3, 2, 12, 3, 0],
    ] as const) {
      const invFreq = Float32Array.from({ length: half }, (_, j) => 1 / 10000 ** ((2 * j) / headDim));
      const x = wide(seqLen * nHeads * headDim + 2);
      const expected = x.slice();
      jsKernels.rope(expected, seqLen, nHeads, headDim, startPos, invFreq);
      const actual = x.slice();
      wasm.rope(actual, seqLen, nHeads, headDim, startPos, invFreq);
      same(actual, expected, `rope ${seqLen}x${nHeads}x${headDim} at ${startPos}`);
    }
    for (const n of [1, 7, 1001]) {
      const [out, x] = [wide(n + 3), wide(n + 3)];
      const expected = out.slice();
      jsKernels.addInPlace(expected, x, n);
      const actual = out.slice();
      wasm.addInPlace(actual, x, n);
      same(actual, expected, `add ${n}`);
    }
    const [rows, bias] = [wide(3 * 7), wide(7)];
    const expectedRows = rows.slice();
    jsKernels.addBias(expectedRows, bias, 3, 7);
    const actualRows = rows.slice();
    wasm.addBias(actualRows, bias, 3, 7);
    same(actualRows, expectedRows, "bias");
  });

  it("RMSNorm in WebAssembly equals the TypeScript reference bit for bit: odd widths, several rows, in place, rows split over 2 threads", async () => {
    const wasm = await startedKernels(1);
    const two = await startedKernels(2);
    for (const [seqLen, dim] of [
      [1, 1],
      [3, 5],
      [2, 2304],
      [7, 259],
      [9, 2304],
    ] as [number, number][]) {
      // Magnitudes from 1e-6 to 1e3, and a gain around 1 (Gemma's 1 + w).
      const x = Float32Array.from({ length: seqLen * dim + 3 }, () => (rng.next() * 2 - 1) * 10 ** (rng.next() * 9 - 6));
      const gain = Float32Array.from({ length: dim }, () => 1 + rng.next() - 0.5);
      const expected = new Float32Array(seqLen * dim);
      jsKernels.rmsnorm(expected, x, gain, seqLen, dim, 1e-6);
      const actual = new Float32Array(seqLen * dim);
      wasm.rmsnorm(actual, x, gain, seqLen, dim, 1e-6);
      assert.ok(
        actual.every((v, i) => Object.is(v, expected[i])),
        `[${seqLen}x${dim}]`,
      );
      const inPlace = x.slice();
      wasm.rmsnorm(inPlace, inPlace, gain, seqLen, dim, 1e-6);
      assert.ok(
        expected.every((v, i) => Object.is(v, inPlace[i])),
        `[${seqLen}x${dim}] in place`,
      );
      assert.equal(inPlace[seqLen * dim], x[seqLen * dim], "nothing past the rows");
      // From 4 rows the worker takes a share of them: the same numbers.
      const split = new Float32Array(seqLen * dim);
      two.rmsnorm(split, x, gain, seqLen, dim, 1e-6);
      assert.ok(
        split.every((v, i) => Object.is(v, expected[i])),
        `[${seqLen}x${dim}] on 2 threads`,
      );
    }
    await two.release!();
  });

  it("GeGLU (tanh form) and soft-capping in f32 SIMD against the f64 reference, odd lengths, every range of inputs", async () => {
    const wasm = await startedKernels(1);
    for (const n of [1, 3, 4, 37, 9216 + 3]) {
      // Magnitudes from 1e-6 (tanh's series) through 0.3 (the switch to e^x) to 200 (saturated).
      const spread = () => (rng.next() * 2 - 1) * 10 ** (rng.next() * 8.3 - 6);
      const gate = Float32Array.from({ length: n }, spread);
      const up = randomF32(n);
      const expected = new Float32Array(n);
      const actual = new Float32Array(n);
      jsKernels.geglu(expected, gate, up, n, "gelu_tanh");
      wasm.geglu(actual, gate, up, n, "gelu_tanh");
      let worst = 0;
      // The reference's 1 + tanh(u) cancels to 0 below v ≈ -8 (f64): allow that much absolute error.
      const allowance = (i: number) => Math.abs(expected[i]!) + 1e-10 * Math.abs(gate[i]! * up[i]!) + 1e-30;
      for (let i = 0; i < n; i++) worst = Math.max(worst, Math.abs(actual[i]! - expected[i]!) / allowance(i));
      // u = √(2/π)(v + 0.044715v³) in f32 (the reference: f64) carries ~|2u|·2^-24 into e^-2u, which
      // is the whole result for very negative v: relative error up to ~4e-6 there.
      assert.ok(worst <= 1e-5, `geglu n=${n}: relative error ${worst}`);
      for (const cap of [30, 50]) {
        const logits = Float32Array.from({ length: n }, () => spread() * 5);
        const reference = logits.slice();
        jsKernels.softcap(reference, n, cap);
        wasm.softcap(logits, n, cap);
        let error = 0;
        for (let i = 0; i < n; i++) error = Math.max(error, Math.abs(logits[i]! - reference[i]!) / (Math.abs(reference[i]!) + 1e-30));
        assert.ok(error <= 2e-6, `softcap ${cap} n=${n}: relative error ${error}`);
      }
    }
    const bad = Float32Array.of(Number.NaN, 1, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 0);
    wasm.softcap(bad, 5, 30);
    assert.ok(Number.isNaN(bad[0]!), "NaN stays NaN (the forward pass reports non-finite logits)");
    assert.deepEqual(
      [...bad.subarray(1)].map((v) => Math.round(v * 1e4) / 1e4),
      [0.9996, 30, -30, 0],
    );
  });

  it("attention against the reference: GQA, soft-cap, sliding window over a wrapped ring buffer, odd head sizes; 2 threads as 1", async () => {
    const wasm = await startedKernels(1);
    const two = await startedKernels(2);
    const cases = [
      // [nHeads, nKvHeads, headDim, startPos, seqLen, window, capacity, softcap]
      [4, 2, 16, 0, 7, null, 1, 50],
      [4, 2, 13, 5, 3, null, 64, null],
      // Positions 40..46 in a ring of 9: rows 4..8 then 0..1.
      [8, 2, 36, 47, 1, 8, 9, 50],
      [2, 1, 20, 30, 6, 12, 13, null],
      [4, 4, 256, 100, 2, null, 128, 50],
    ] as const;
    for (const [nHeads, nKvHeads, headDim, startPos, seqLen, window, capacity, softcap] of cases) {
      const kvWidth = nKvHeads * headDim;
      const args = {
        q: randomF32(seqLen * nHeads * headDim).map((x) => 3 * x),
        newK: randomF32(seqLen * kvWidth),
        newV: randomF32(seqLen * kvWidth),
        pastK: randomF32(capacity * kvWidth),
        pastV: randomF32(capacity * kvWidth),
        pastCapacity: capacity,
        startPos,
        seqLen,
        nHeads,
        nKvHeads,
        headDim,
        scale: headDim ** -0.5,
        softcap,
        window,
      };
      const expected = new Float32Array(seqLen * nHeads * headDim);
      const actual = new Float32Array(seqLen * nHeads * headDim);
      jsKernels.attention({ ...args, out: expected });
      wasm.attention({ ...args, out: actual });
      const label = `heads ${nHeads}/${nKvHeads}, head_dim ${headDim}, at ${startPos}+${seqLen}, window ${window}, ring ${capacity}`;
      assert.ok(maxRelativeDiff(actual, expected) <= 1e-5, `${label}: ${maxRelativeDiff(actual, expected)}`);
      // Split into (query, KV head) items across the worker and the main thread: the same numbers.
      const split = new Float32Array(actual.length);
      two.attention({ ...args, out: split });
      assert.deepEqual([...split], [...actual], label);
      // A ring lent by the kernels' KV storage is read in place: the same numbers as the copied rows.
      for (const kernels of [wasm, two]) {
        const lent = (values: Float32Array) => {
          const array = kernels.kvStorage!.allocate(values.length)!;
          array.set(values);
          return array;
        };
        const inPlace = new Float32Array(actual.length);
        kernels.attention({ ...args, pastK: lent(args.pastK), pastV: lent(args.pastV), out: inPlace });
        assert.deepEqual([...inPlace], [...actual], `${label}, read in place (${kernels.name})`);
      }
    }
    // A cache holding fewer rows than its position says is refused, lent or not, instead of read past its end.
    const short = { nHeads: 2, nKvHeads: 1, headDim: 8, startPos: 10, seqLen: 1, pastCapacity: 64, scale: 1, softcap: null, window: null };
    for (const pastK of [new Float32Array(4 * 8), wasm.kvStorage!.allocate(4 * 8)!]) {
      const args = { ...short, q: randomF32(16), newK: randomF32(8), newV: randomF32(8), pastK, pastV: pastK, out: new Float32Array(16) };
      assert.throws(() => wasm.attention(args), GemmaError);
      assert.ok(
        args.out.every((v) => v === 0),
        "nothing written",
      );
    }
    await two.release!();
  });

  it("KV storage: rows lent in shared WebAssembly memory, reused first-fit and merged when given back, null past its limit", async () => {
    const arena = new KvArena(await kernelModule(true, RELAXED), 1 << 20);
    const a = arena.allocate(1000)!;
    const b = arena.allocate(3000)!;
    assert.ok(a.buffer instanceof SharedArrayBuffer && a.length === 1000 && a.every((v) => v === 0));
    const [pa, pb] = [arena.pointerOf(a)!, arena.pointerOf(b)!];
    assert.ok(pb >= pa + 4000, "blocks do not overlap");
    a.fill(7);
    // Growing the memory (a block past the first 128 KiB) leaves earlier views working.
    const big = arena.allocate(200_000)!;
    assert.ok(arena.memory.buffer.byteLength > 2 * 65536);
    a[999] = 8;
    assert.equal(new Float32Array(arena.memory.buffer, pa, 1000)[999], 8);
    // Given back, a's block is reused by a request that fits and comes back zeroed.
    arena.release(a);
    assert.equal(arena.pointerOf(a), undefined);
    const c = arena.allocate(500)!;
    assert.equal(arena.pointerOf(c), pa);
    assert.ok(c.every((v) => v === 0));
    // Everything given back: the neighbours merge and the top returns to the start.
    for (const array of [b, c, big]) arena.release(array);
    assert.equal(arena.heldBytes, 0);
    assert.equal(arena.pointerOf(arena.allocate(5000)!), pa, "one merged block from the start again");
    // Past the limit there is no room: the cache falls back to its own arrays.
    assert.equal(arena.allocate(1 << 20), null);
    // An array it did not lend is ignored.
    arena.release(new Float32Array(4));
  });

  it("the recurrent branch (convolution, gates, RG-LRU scan, output gate) follows the reference over calls, odd widths; 2 threads as 1", async () => {
    const wasm = await startedKernels(1);
    const two = await startedKernels(2);
    let worst = 0;
    // [nBlocks, blockWidth, convWidth]: one channel, odd blocks, RecurrentGemma 2B's gates, no history.
    for (const [nBlocks, blockWidth, convWidth] of [
      [1, 1, 4],
      [3, 7, 4],
      [10, 256, 4],
      [2, 6, 1],
    ] as const) {
      const width = nBlocks * blockWidth;
      const constants = {
        convWeight: randomF32(convWidth * width),
        convBias: randomF32(width),
        inputGate: randomF32(nBlocks * blockWidth * blockWidth).map((v) => v / Math.sqrt(blockWidth)),
        inputGateBias: randomF32(width),
        recurrentGate: randomF32(nBlocks * blockWidth * blockWidth).map((v) => v / Math.sqrt(blockWidth)),
        recurrentGateBias: randomF32(width),
        // softplus(Λ) > 0, as the model computes it.
        softplusLambda: Float32Array.from({ length: width }, () => 0.01 + rng.next() * 4),
      };
      const carried = [0, 1, 2].map(() => ({ history: new Float32Array((convWidth - 1) * width), state: new Float32Array(width) }));
      let startPos = 0;
      for (const seqLen of [3, 1, 1, 20]) {
        const x = randomF32(seqLen * width).map((v) => 3 * v);
        const y = randomF32(seqLen * width).map((v) => 3 * v);
        // The forward pass writes the output over x: the wasm calls do too.
        const outs = [new Float32Array(x.length), x.slice(), x.slice()];
        const args = (i: number) => ({
          ...constants,
          ...carried[i]!,
          out: outs[i]!,
          x: i === 0 ? x : outs[i]!,
          y,
          seqLen,
          width,
          nBlocks,
          convWidth,
          startPos,
        });
        jsKernels.recurrence(args(0));
        wasm.recurrence(args(1));
        two.recurrence(args(2));
        const label = `${nBlocks}x${blockWidth}, width ${convWidth}, ${seqLen} steps at ${startPos}`;
        worst = Math.max(worst, maxRelativeDiff(outs[1]!, outs[0]!), maxRelativeDiff(carried[1]!.state, carried[0]!.state));
        assert.deepEqual([...carried[1]!.history], [...carried[0]!.history], `history, ${label}`);
        assert.deepEqual([...outs[2]!], [...outs[1]!], `2 threads, ${label}`);
        assert.deepEqual([...carried[2]!.state], [...carried[1]!.state], `2 threads' state, ${label}`);
        assert.deepEqual([...carried[2]!.history], [...carried[1]!.history], `2 threads' history, ${label}`);
        startPos += seqLen;
      }
    }
    assert.ok(worst <= 1e-5, `max relative difference ${worst}`);
    await two.release!();
  });

  it("quantizes f32, bf16 and f16 matrices on load into the same Q8_0 and Q4_0 blocks as the TypeScript quantizers", async () => {
    const wasm = await createWasmKernels({ host: nodeWasmHost, threads: 1 });
    for (const from of ["f32", "bf16", "f16"] as const) {
      for (const target of ["q8_0", "q4_0"] as const) {
        for (const rows of [1, 5, 130]) {
          const source = randomWeight(from, rows, 96);
          if (rows === 5) (source.data as Float32Array | Uint16Array)[7] = from === "f32" ? Number.NaN : 0x7fc0; // a broken value: no trap
          const expected = toBlocks(source.data, from, rows, 96, target);
          const quantized = wasm.quantize!(source, target);
          assert.equal(quantized.dtype, target);
          // Read back through the packed layout, row by row, against the TypeScript blocks' values.
          const ids = Array.from({ length: rows }, (_, i) => i);
          const actual = new Float32Array(rows * 96);
          const reference = new Float32Array(rows * 96);
          wasm.embed(actual, quantized, ids, 1);
          jsKernels.embed(reference, { dtype: target, rows, cols: 96, data: expected }, ids, 1);
          assert.deepEqual([...actual], [...reference], `${from} -> ${target}, ${rows} rows`);
        }
      }
    }
  });

  // A matrix over one 16 MB read chunk: chunks are read ahead into two buffers, and while the model
  // loads the worker quantizes a share of each chunk's rows.
  it("quantizes a matrix of several read chunks on load across threads into the TypeScript quantizer's blocks", async () => {
    let workerJobs = 0;
    const host: WasmHost = {
      ...nodeWasmHost,
      startWorker(init) {
        const worker = nodeWasmHost.startWorker(init);
        return {
          ...worker,
          request: (message) => {
            if (typeof message === "object" && "quantize" in message) workerJobs++;
            return worker.request(message);
          },
        };
      },
    };
    const wasm = await createWasmKernels({ host, threads: 2 });
    const [rows, cols] = [4100, 2048];
    const source = randomWeight("bf16", rows, cols);
    const bytes = new Uint8Array(source.data.buffer);
    const reads: number[] = [];
    const quantized = await wasm.receive!(
      { dtype: "bf16", rows, cols },
      async (into, offset) => {
        reads.push(offset);
        into.set(bytes.subarray(offset, offset + into.length));
      },
      "q8_0",
    );
    assert.deepEqual(reads, [0, 4096 * cols * 2], "two chunks of 16 MB");
    assert.equal(workerJobs, 2, "the worker took a share of each chunk");
    const ids = Array.from({ length: rows }, (_, i) => i);
    const actual = new Float32Array(rows * cols);
    const reference = new Float32Array(rows * cols);
    wasm.embed(actual, quantized, ids, 1);
    jsKernels.embed(reference, { dtype: "q8_0", rows, cols, data: toBlocks(source.data, "bf16", rows, cols, "q8_0") }, ids, 1);
    assert.ok(
      actual.every((v, i) => v === reference[i]),
      "the same blocks",
    );
    await wasm.release!();
  });

  it("activations quantize in SIMD into the TypeScript reference's blocks: ties away from zero, a zero block, every layout", async () => {
    const cols = 256;
    const seqLen = 2;
    const x = randomF32(seqLen * cols).map((v) => v * 40);
    // Block 0: amax 127 so the scale is 1 and these are exact ties; block 1 all zeros.
    x.set([127, -126.5, -2.5, -0.5, 0.5, 2.5, 1.49, -1.51, 0, -0, 63.5, -63.5], 0);
    x.fill(0, 32, 64);
    for (const relaxed of RELAXED ? [true, false] : [false]) {
      const memory = new WebAssembly.Memory({ initial: 4 });
      const k = instantiate(await kernelModule(false, relaxed), memory);
      new Float32Array(memory.buffer, 0, x.length).set(x);
      const out = 16384;
      for (const q8 of [0, 1]) {
        k.quantizeActivations(0, out, cols, seqLen, q8);
        const split = relaxed && q8 === 1;
        const blockBytes = split ? ACTIVATION_SPLIT.blockBytes : ACTIVATION_Q8.blockBytes;
        const view = new DataView(memory.buffer);
        for (let s = 0; s < seqLen; s++) {
          const { scales, values } = quantizeActivationRow(x, s * cols, cols);
          for (let b = 0; b < cols / QK; b++) {
            const at = out + (s * (cols / QK) + b) * blockBytes;
            assert.equal(view.getFloat32(at, true), scales[b], `scale of block ${b}`);
            const expected = [...values.subarray(b * QK, (b + 1) * QK)];
            const actual = split
              ? Array.from(
                  { length: QK },
                  (_, i) => view.getUint8(at + ACTIVATION_SPLIT.posOffset + i) - view.getUint8(at + ACTIVATION_SPLIT.negOffset + i),
                )
              : [...new Int8Array(memory.buffer, at + ACTIVATION_Q8.quantsOffset, QK)];
            assert.deepEqual(actual, expected, `${relaxed ? "relaxed" : "plain"} q8=${q8} block ${b}`);
            if (!split)
              assert.equal(
                view.getInt32(at + ACTIVATION_Q8.biasOffset, true),
                expected.reduce((a, v) => a - 8 * v, 0),
              );
          }
        }
      }
      k.quantizeActivationsK(0, out, cols, seqLen);
      for (let s = 0; s < seqLen; s++) {
        const { scales, values, sums } = quantizeActivationRowK(x, s * cols, cols);
        const at = out + s * ACTIVATION_K.blockBytes;
        assert.equal(new DataView(memory.buffer).getFloat32(at, true), scales[0]);
        assert.deepEqual([...new Int8Array(memory.buffer, at + ACTIVATION_K.quantsOffset, cols)], [...values]);
        assert.deepEqual([...new Int16Array(memory.buffer, at + ACTIVATION_K.sumsOffset, 16)], [...sums]);
      }
    }
  });

  it("f16 matmuls over activations from 1e-15 to 1e15, where the kernel's scaled activations and sums must neither overflow nor underflow", async () => {
    const wasm = await createWasmKernels({ host: nodeWasmHost, threads: 1 });
    const w = randomWeight("f16", 9, 2308);
    const reference = structuredClone(w);
    wasm.adopt!([w]);
    for (const scale of [1e-15, 1e-6, 1e6, 1e15]) {
      const x = randomF32(2 * 2308).map((v) => v * scale);
      const expected = new Float32Array(2 * 9);
      const actual = new Float32Array(2 * 9);
      jsKernels.matmul(expected, x, reference, 2);
      wasm.matmul(actual, x, w, 2);
      const worst = Math.max(...actual.map((v, i) => Math.abs(v - expected[i]!) / Math.abs(expected[i]!)));
      assert.ok(worst <= 1e-4, `activations × ${scale}: relative error ${worst}`);
    }
  });

  it("embedding rows of f32, bf16 and f16 tables in groups of four rows, bit for bit as the reference", async () => {
    const wasm = await createWasmKernels({ host: nodeWasmHost, threads: 1 });
    for (const dtype of ["f32", "bf16", "f16"] as const) {
      for (const [rows, cols] of [
        [1, 8],
        [6, 12],
        [9, 2308],
        [7, 13],
      ] as [number, number][]) {
        const table = randomWeight(dtype, rows, cols);
        const reference = structuredClone(table);
        wasm.adopt!([table]);
        const ids = Array.from({ length: 2 * rows + 1 }, (_, i) => (i * 7) % rows);
        const expected = new Float32Array(ids.length * cols);
        const actual = new Float32Array(ids.length * cols);
        // A scale f32 cannot hold: the product is taken in f64, as the reference takes it.
        jsKernels.embed(expected, reference, ids, Math.sqrt(2560));
        wasm.embed(actual, table, ids, Math.sqrt(2560));
        assert.deepEqual([...actual], [...expected], `${dtype} [${rows}x${cols}]`);
        // Packed tables are read in WebAssembly, which checks the id (row-major ones: the reference).
        if (cols % 4 === 0) assert.throws(() => wasm.embed(actual, table, [rows], 1), /outside the embedding's/);
      }
    }
  });

  it("embedding rows of Q8_0 and Q4_0 tables held in the kernels' packed layout", async () => {
    for (const relaxedSimd of [true, false]) {
      const wasm = await createWasmKernels({ host: nodeWasmHost, relaxedSimd, threads: 1 });
      for (const dtype of ["q8_0", "q4_0"] as const) {
        for (const rows of [1, 6, 9]) {
          const table = randomWeight(dtype, rows, 96);
          const reference = structuredClone(table);
          wasm.adopt!([table]);
          assert.notDeepEqual([...table.data.subarray(0, 40)], [...reference.data.subarray(0, 40)], "repacked");
          const ids = Array.from({ length: 2 * rows + 1 }, (_, i) => (i * 7) % rows);
          const expected = new Float32Array(ids.length * 96);
          const actual = new Float32Array(ids.length * 96);
          jsKernels.embed(expected, reference, ids, 1.7);
          wasm.embed(actual, table, ids, 1.7);
          assert.ok(maxRelativeDiff(actual, expected) <= 1e-6, `${dtype} ${rows} rows: ${maxRelativeDiff(actual, expected)}`);
          assert.throws(() => wasm.embed(actual, table, [rows], 1), /outside the embedding's/);
        }
      }
    }
  });

  it("relaxed SIMD's int8 dot products give the plain SIMD kernels' results, and say so in their name", async () => {
    const relaxed = await createWasmKernels({ host: nodeWasmHost, relaxedSimd: true, threads: 1 });
    const plain = await createWasmKernels({ host: nodeWasmHost, relaxedSimd: false, threads: 1 });
    assert.equal(relaxed.name, RELAXED ? "wasm-relaxed" : "wasm", "relaxed SIMD is used exactly where the engine has it");
    assert.equal(plain.name, "wasm");
    for (const dtype of ["q8_0", "q4_0"] as const) {
      for (const [rows, cols, seqLen] of [
        [5, 96, 3],
        [130, 2304, 1],
      ] as [number, number, number][]) {
        const w = randomWeight(dtype, rows, cols);
        const copy = structuredClone(w);
        relaxed.adopt!([w]);
        plain.adopt!([copy]);
        const x = randomF32(seqLen * cols);
        const a = new Float32Array(seqLen * rows);
        const b = new Float32Array(seqLen * rows);
        relaxed.matmul(a, x, w, seqLen);
        plain.matmul(b, x, copy, seqLen);
        // The same integer sums; only the order of the f32 lane additions differs.
        assert.ok(maxRelativeDiff(a, b) <= 1e-5, `${dtype} [${rows}x${cols}]: ${maxRelativeDiff(a, b)}`);
      }
    }
  });

  // Relaxed SIMD runs Q4_0 matmuls of PROMPT_TILE.minTokens tokens or more as tiles over a repacked
  // copy of each row group (assembly/prompt-tiles.ts), 2-3 tokens in pairs (q4_0-rows.ts). The
  // integer sums and float steps are the same, so every token's row must equal its own one-token
  // matmul exactly.
  it("Q4_0 prompt tiles and token pairs give the one-token results bit for bit: several cache chunks, a partial row group, 2 threads", async () => {
    for (const [rows, cols, seqLen, threads] of [
      [130, 288, 9, 2],
      [5, 9216, 50, 1],
      [7, 96, 3, 1],
    ] as [number, number, number, number][]) {
      const wasm = await createWasmKernels({ host: nodeWasmHost, threads });
      const w = randomWeight("q4_0", rows, cols);
      wasm.adopt!([w]);
      await wasm.ready!();
      const x = randomF32(seqLen * cols);
      const tiled = new Float32Array(seqLen * rows);
      wasm.matmul(tiled, x, w, seqLen);
      const one = new Float32Array(rows);
      for (let s = 0; s < seqLen; s++) {
        wasm.matmul(one, x.subarray(s * cols, (s + 1) * cols), w, 1);
        assert.deepEqual(tiled.subarray(s * rows, (s + 1) * rows), one, `token ${s} of [${rows}x${cols}] x ${seqLen}`);
      }
      await wasm.release!();
    }
  });

  // Q8_0 and Q4_0 in both forms of relaxed SIMD's dot (simd.ts usePairDots: the 16-bit pair sums
  // where the engine builds the dot from them, else the 32-bit dot), at the extremes of the int8
  // range; 1-3 tokens run the row-wise kernels, 7 Q4_0's prompt tiles and a tail.
  for (const dtype of ["q8_0", "q4_0"] as const) {
    it(`${dtype} gives the same sums in both forms of the relaxed dot and in plain SIMD, at the extremes of the int8 range`, {
      skip: !RELAXED && "no relaxed SIMD here",
    }, async () => {
      const rows = 9;
      const cols = 96;
      const blockBytes = dtype === "q8_0" ? 34 : 18;
      // Raw blocks: f16 scale 1, quants across the whole range (Q8_0: -128 and 127; Q4_0: nibbles 0 and 15).
      const blocks = new Uint8Array((rows * cols * blockBytes) / QK);
      for (let b = 0; b < blocks.length / blockBytes; b++) {
        blocks[b * blockBytes + 1] = 0x3c;
        for (let i = 2; i < blockBytes; i++)
          blocks[b * blockBytes + i] = i % 5 === 0 ? (b % 2 ? 0x80 : 0x7f) : i % 7 === 0 ? 0xff : Math.floor(rng.next() * 256);
      }
      // Each block's largest value quantizes to ±127 exactly; the others anywhere between.
      const inputs = [1, 2, 3, 7].map((seqLen) => randomF32(seqLen * cols).map((v, i) => (i % 32 === 7 ? (i % 64 < 32 ? 1 : -1) : v)));
      const results: Float32Array[] = [];
      for (const [relaxed, pairs] of [
        [true, 1],
        [true, 0],
        [false, 0],
      ] as const) {
        const memory = new WebAssembly.Memory({ initial: 4 });
        const k = instantiate(await kernelModule(false, relaxed), memory);
        k.usePairDots(pairs);
        const wPtr = 1024;
        new Uint8Array(memory.buffer).set(blocks, wPtr);
        const q8 = dtype === "q8_0" ? 1 : 0;
        k.packRows4(wPtr, rows, cols, q8, 16384);
        for (const x of inputs) {
          const seqLen = x.length / cols;
          const xPtr = 32768;
          new Float32Array(memory.buffer, xPtr, x.length).set(x);
          k.quantizeActivations(xPtr, 40960, cols, seqLen, q8);
          if (q8) k.matmulQ8_0(49152, 40960, wPtr, rows, cols, seqLen, rows);
          else k.matmulQ4_0(49152, 40960, wPtr, rows, cols, seqLen, rows, 65536);
          const out = new Float32Array(memory.buffer, 49152, seqLen * rows).slice();
          const expected = new Float32Array(seqLen * rows);
          jsKernels.matmul(expected, x, { dtype, rows, cols, data: blocks }, seqLen);
          assert.ok(maxRelativeDiff(out, expected) <= 1e-5, `relaxed=${relaxed} pairs=${pairs} ${seqLen} tokens`);
          results.push(out);
        }
      }
      // The two forms of the relaxed dot, bit for bit: the same integer sums, scaled in the same
      // order (plain SIMD rounds its multiply-adds apart, so it only matches the reference).
      const n = inputs.length;
      for (let i = 0; i < n; i++) assert.deepEqual([...results[n + i]!], [...results[i]!], `${inputs[i]!.length / cols} tokens`);
    });
  }

  it("Q4_0 prompt tiles run from PROMPT_TILE.minTokens tokens, in the thread's scratch", {
    skip: !RELAXED && "no relaxed SIMD here",
  }, async () => {
    const rows = 6;
    const cols = 64;
    const memory = new WebAssembly.Memory({ initial: 4 });
    const k = instantiate(await kernelModule(false, true), memory);
    const heap = new Uint8Array(memory.buffer);
    const wPtr = 1024;
    const blocks = toBlocks(randomF32(rows * cols), "f32", rows, cols, "q4_0");
    heap.set(blocks, wPtr);
    const packScratch = 8192;
    k.packRows4(wPtr, rows, cols, 0, packScratch);
    const xPtr = 16384;
    const xqPtr = 32768;
    const outPtr = 49152;
    const tilePtr = 65536;
    const tileBytes = (cols / QK) * PROMPT_TILE.blockBytes;
    for (const seqLen of [PROMPT_TILE.minTokens - 1, PROMPT_TILE.minTokens]) {
      new Float32Array(memory.buffer, xPtr, seqLen * cols).set(randomF32(seqLen * cols));
      k.quantizeActivations(xPtr, xqPtr, cols, seqLen, 0);
      heap.fill(0xab, tilePtr, tilePtr + tileBytes);
      k.matmulQ4_0(outPtr, xqPtr, wPtr, rows, cols, seqLen, rows, tilePtr);
      const touched = heap.subarray(tilePtr, tilePtr + tileBytes).some((b) => b !== 0xab);
      assert.equal(touched, seqLen >= PROMPT_TILE.minTokens, `${seqLen} tokens`);
      assert.ok(
        heap.subarray(tilePtr + tileBytes, tilePtr + tileBytes + 64).every((b) => b === 0),
        "nothing past the thread's scratch",
      );
    }
  });

  it("keeps every weight view valid while its memory grows", async () => {
    const arena = new WasmArena(await kernelModule(), false, 64 * 1024);
    const weights = Array.from({ length: 20 }, (_, i) => randomWeight(i % 2 ? "bf16" : "f32", 50 + i, 300));
    const copies = weights.map((w) => structuredClone(w));
    for (const w of weights) arena.place(w);
    arena.scratch(8 * 1024 * 1024);
    // Every row of 300 splits into chunks of four, so each matrix is packed: its values are moved, not changed.
    const sorted = (a: Weight["data"]) => [...a].sort((p, q) => p - q);
    weights.forEach((w, i) => {
      assert.equal(w.data.length, copies[i]!.data.length);
      assert.deepEqual(sorted(w.data), sorted(copies[i]!.data));
      assert.equal(w.data.buffer, arena.memory.buffer);
    });
  });
});

describe("worker threads", () => {
  it("give the same logits as one thread on every fixture, for f32, bf16 and q8_0 weights", async () => {
    const { loadModel } = await import("../../src/gemma.js");
    const { FIXTURES } = await import("../helpers/random-model.js");
    const ids = Array.from({ length: 40 }, (_, i) => (i === 0 ? 2 : (i * 37) % 512));
    for (const name of ["tiny_a", "tiny_b_27blike", "rg_tiny"]) {
      for (const quant of ["none", "q8_0"] as const) {
        const one = await loadModel(`${FIXTURES}${name}`, { kernels: "wasm", threads: 1, quant });
        const two = await loadModel(`${FIXTURES}${name}`, { kernels: "wasm", threads: 2, quant });
        assert.equal(two.forwardPass.constructor.name, one.forwardPass.constructor.name);
        const a = await one.logits(ids);
        const b = await two.logits(ids);
        assert.ok(maxRelativeDiff(b, a) <= 1e-5, `${name} ${quant}: ${maxRelativeDiff(b, a)}`);
      }
    }
  });

  it("run GeGLU and the soft-cap over a long row in slices of four on two threads, exactly as one thread", async () => {
    const one = await createWasmKernels({ host: nodeWasmHost, threads: 1 });
    const two = await createWasmKernels({ host: nodeWasmHost, threads: 2 });
    one.adopt!([randomWeight("f32", 4, 4)]);
    two.adopt!([randomWeight("f32", 4, 4)]);
    await two.ready!();
    // Odd lengths over the pool's threshold (2^14): the slices end on multiples of 4, the tail is the last thread's.
    for (const n of [20_001, 256_003]) {
      const gate = randomF32(n).map((v) => v * 6);
      const up = randomF32(n);
      const [a, b] = [new Float32Array(n), new Float32Array(n)];
      one.geglu(a, gate, up, n, "gelu_tanh");
      two.geglu(b, gate, up, n, "gelu_tanh");
      assert.ok(
        a.every((v, i) => Object.is(v, b[i])),
        `geglu n=${n}`,
      );
      const logits = randomF32(n).map((v) => v * 90);
      const [c, d] = [logits.slice(), logits.slice()];
      one.softcap(c, n, 30);
      two.softcap(d, n, 30);
      assert.ok(
        c.every((v, i) => Object.is(v, d[i])),
        `softcap n=${n}`,
      );
      assert.ok(
        d.every((v) => Math.abs(v) <= 30),
        "capped",
      );
    }
    await two.release!();
  });

  it("split a large matmul across threads exactly, with relaxed and with plain SIMD", async () => {
    for (const relaxedSimd of [true, false]) {
      const kernels = await createWasmKernels({ host: nodeWasmHost, threads: 2, relaxedSimd });
      assert.equal(kernels.name, relaxedSimd && RELAXED ? "wasm-relaxed×2" : "wasm×2");
      for (const dtype of ["f32", "bf16", "f16", "q8_0", "q4_0"] as const) {
        const w = randomWeight(dtype, 301, 256);
        const reference = structuredClone(w);
        kernels.adopt!([w]);
        await kernels.ready!();
        const x = randomF32(3 * 256);
        const expected = new Float32Array(3 * 301);
        const actual = new Float32Array(3 * 301);
        jsKernels.matmul(expected, x, reference, 3);
        kernels.matmul(actual, x, w, 3);
        assert.ok(maxRelativeDiff(actual, expected) <= 1e-5, `${dtype}: ${maxRelativeDiff(actual, expected)}`);
      }
      await kernels.release!();
    }
  });

  it("release stops the workers and leaves kernels that still compute on one thread", async () => {
    const kernels = await createWasmKernels({ host: nodeWasmHost, threads: 2 });
    const w = randomWeight("bf16", 301, 256);
    const reference = structuredClone(w);
    kernels.adopt!([w]);
    await kernels.ready!();
    await kernels.release!();
    await kernels.release!();
    const x = randomF32(2 * 256);
    const expected = new Float32Array(2 * 301);
    const actual = new Float32Array(2 * 301);
    jsKernels.matmul(expected, x, reference, 2);
    kernels.matmul(actual, x, w, 2);
    assert.ok(maxRelativeDiff(actual, expected) <= 1e-5);
  });
});
