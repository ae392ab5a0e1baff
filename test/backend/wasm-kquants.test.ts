/** K-quant weights (Q4_K, Q5_K, Q6_K as GGUF stores them) in the WebAssembly kernels, against the TypeScript reference. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { jsKernels } from "../../src/backend/js/index.js";
import type { Weight } from "../../src/backend/kernels.js";
import { relaxedSimdSupported } from "../../src/backend/wasm/features.js";
import { createWasmKernels } from "../../src/backend/wasm/index.js";
import { instantiate } from "../../src/backend/wasm/module.js";
import { kernelModule, nodeWasmHost } from "../../src/backend/wasm/node-host.js";
import { Rng } from "../../src/generate/rng.js";
import { BLOCK_LAYOUTS, type KQuantDtype } from "../../src/weights/block-layout.js";
import { dequantizeKQuantRow } from "../../src/weights/k-quants.js";
import { randomKQuantWeight } from "../helpers/k-quant-blocks.js";

const rng = new Rng(11);
const randomF32 = (n: number) => Float32Array.from({ length: n }, () => rng.next() * 2 - 1);
const DTYPES: KQuantDtype[] = ["q4_k", "q5_k", "q6_k"];

function maxRelativeDiff(a: Float32Array, b: Float32Array): number {
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!) / Math.max(1, Math.abs(b[i]!)));
  return worst;
}

/** The product with the weights widened to f32 and unquantized activations (of |w| and |x| with `absolute`). */
function floatProduct(w: Weight, x: Float32Array, seqLen: number, absolute = false): Float32Array {
  const floats = new Float32Array(w.rows * w.cols);
  for (let r = 0; r < w.rows; r++)
    dequantizeKQuantRow(w.dtype as KQuantDtype, w.data as Uint8Array, r, w.cols, floats.subarray(r * w.cols));
  const out = new Float32Array(seqLen * w.rows);
  const abs = (v: Float32Array) => (absolute ? v.map(Math.abs) : v);
  jsKernels.matmul(out, abs(x), { dtype: "f32", rows: w.rows, cols: w.cols, data: abs(floats) }, seqLen);
  return out;
}

/**
 * Worst |a − b| over Σ|w·x| of its output: the kernels add one f32 product per 32 values (the
 * reference adds in f64), so their rounding scales with the terms, not with the (cancelling) sum.
 */
function termRelativeDiff(a: Float32Array, b: Float32Array, w: Weight, x: Float32Array, seqLen: number): number {
  const terms = floatProduct(w, x, seqLen, true);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!) / terms[i]!);
  return worst;
}

describe("K-quant matmuls", () => {
  // Rows not a multiple of the 4-row group, odd token counts (the 2-token tiles' tail).
  const shapes: [number, number, number][] = [
    [1, 256, 1],
    [7, 512, 3],
    [33, 768, 5],
    [130, 2304, 2],
  ];
  for (const dtype of DTYPES) {
    it(`the TypeScript reference is the float product up to activation rounding (${dtype})`, () => {
      const w = randomKQuantWeight(dtype, 9, 1024, 5);
      const x = randomF32(3 * 1024);
      const actual = new Float32Array(3 * 9);
      jsKernels.matmul(actual, x, w, 3);
      const exact = floatProduct(w, x, 3);
      let worst = 0;
      let scale = 0;
      for (let i = 0; i < exact.length; i++) {
        worst = Math.max(worst, Math.abs(actual[i]! - exact[i]!));
        scale = Math.max(scale, Math.abs(exact[i]!));
      }
      // int8 activations: ~0.4% of a block's largest value per value, far below the weights' own error.
      assert.ok(scale > 0.1, `a non-trivial product (${scale})`);
      assert.ok(worst <= 0.01 * scale, `activation rounding error ${worst} of ${scale}`);
    });
    for (const [rows, cols, seqLen] of shapes) {
      for (const relaxedSimd of [true, false]) {
        it(`${dtype} [${rows}x${cols}] x ${seqLen} tokens, ${relaxedSimd ? "relaxed" : "plain"} SIMD, equals the reference`, async () => {
          const wasm = await createWasmKernels({ host: nodeWasmHost, relaxedSimd, threads: 1 });
          const w = randomKQuantWeight(dtype, rows, cols, rows * 31 + cols);
          const reference = structuredClone(w);
          wasm.adopt!([w]);
          assert.ok(w.data.buffer !== reference.data.buffer, "moved into wasm memory");
          assert.equal(w.data.byteLength, Math.ceil(rows / 4) * 4 * (reference.data.byteLength / rows), "stored size, groups of four rows");
          const x = randomF32(seqLen * cols);
          const expected = new Float32Array(seqLen * rows);
          const actual = new Float32Array(seqLen * rows);
          jsKernels.matmul(expected, x, reference, seqLen);
          wasm.matmul(actual, x, w, seqLen);
          const diff = termRelativeDiff(actual, expected, reference, x, seqLen);
          assert.ok(diff <= 1e-6, `worst difference ${diff} of the terms' magnitude`);
        });
      }
    }
    it(`${dtype} [5x9216] x 19 tokens in cache chunks, and on two threads`, async () => {
      const one = await createWasmKernels({ host: nodeWasmHost, threads: 1 });
      const two = await createWasmKernels({ host: nodeWasmHost, threads: 2 });
      const w = randomKQuantWeight(dtype, 301, 9216, 7);
      const [a, b, reference] = [structuredClone(w), structuredClone(w), structuredClone(w)];
      one.adopt!([a]);
      two.adopt!([b]);
      await two.ready!();
      const x = randomF32(19 * 9216);
      const expected = new Float32Array(19 * 301);
      const single = new Float32Array(19 * 301);
      const threaded = new Float32Array(19 * 301);
      jsKernels.matmul(expected, x, reference, 19);
      one.matmul(single, x, a, 19);
      two.matmul(threaded, x, b, 19);
      await two.release!();
      const diff = termRelativeDiff(single, expected, reference, x, 19);
      assert.ok(diff <= 1e-6, `one thread: worst difference ${diff} of the terms' magnitude`);
      assert.deepEqual([...threaded], [...single], "two threads compute each row exactly as one");
    });
  }

  // Both forms of relaxed SIMD's dot (simd.ts usePairDots: 16-bit pair sums added while they fit,
  // or the 32-bit dot), bit for bit, with activations at ±127 and every quant value up to the
  // type's largest; 1 token (decode) and 2-3 (the two-token passes and their tail). Q6_K keeps the
  // 32-bit dot in both.
  for (const dtype of ["q4_k", "q5_k"] as const) {
    it(`${dtype} gives the same sums in both forms of the relaxed dot`, {
      skip: !relaxedSimdSupported() && "no relaxed SIMD here",
    }, async () => {
      const rows = 8;
      const cols = 512;
      const random = randomKQuantWeight(dtype, rows, cols, 7).data as Uint8Array;
      // Rows 4-7: every quant at the type's largest value (all bits from byte 16 on set: Q5_K's fifth
      // bits and both types' nibbles), the 16-bit sums' worst case.
      const blocks = random.slice();
      const { blockBytes } = BLOCK_LAYOUTS[dtype];
      for (let b = blocks.length / 2; b < blocks.length; b += blockBytes) blocks.fill(0xff, b + 16, b + blockBytes);
      const inputs = [1, 2, 3].map((seqLen) => randomF32(seqLen * cols).map((v, i) => (i % 256 === 5 ? (i % 512 < 256 ? 1 : -1) : v)));
      // And a token whose activations all quantize to 127.
      inputs.push(new Float32Array(cols).fill(1));
      const outputs: Float32Array[][] = [];
      for (const pairs of [1, 0]) {
        const memory = new WebAssembly.Memory({ initial: 4 });
        const k = instantiate(await kernelModule(false, true), memory);
        k.usePairDots(pairs);
        const wPtr = 1024;
        new Uint8Array(memory.buffer).set(blocks, wPtr);
        k.packKRows4(wPtr, rows, cols, blockBytes, 65536);
        const results: Float32Array[] = [];
        for (const x of inputs) {
          const seqLen = x.length / cols;
          new Float32Array(memory.buffer, 131072, x.length).set(x);
          k.quantizeActivationsK(131072, 163840, cols, seqLen);
          const kernel = dtype === "q4_k" ? k.matmulQ4_K : dtype === "q5_k" ? k.matmulQ5_K : k.matmulQ6_K;
          kernel(196608, 163840, wPtr, rows, cols, seqLen, rows);
          const out = new Float32Array(memory.buffer, 196608, seqLen * rows).slice();
          const expected = new Float32Array(seqLen * rows);
          const w = { dtype, rows, cols, data: blocks };
          jsKernels.matmul(expected, x, w, seqLen);
          const diff = termRelativeDiff(out, expected, w, x, seqLen);
          assert.ok(diff <= 1e-6, `pairs=${pairs} ${seqLen} tokens: ${diff} of the terms' magnitude`);
          results.push(out);
        }
        outputs.push(results);
      }
      for (const [i, x] of inputs.entries()) assert.deepEqual([...outputs[0]![i]!], [...outputs[1]![i]!], `${x.length / cols} tokens`);
    });
  }

  it("embedding rows of K-quant tables in the packed layout equal the reference's dequantized rows", async () => {
    for (const relaxedSimd of [true, false]) {
      const wasm = await createWasmKernels({ host: nodeWasmHost, relaxedSimd, threads: 1 });
      for (const dtype of DTYPES) {
        for (const rows of [1, 6, 9]) {
          const table = randomKQuantWeight(dtype, rows, 512, rows);
          const reference = structuredClone(table);
          wasm.adopt!([table]);
          const ids = Array.from({ length: 2 * rows + 1 }, (_, i) => (i * 7) % rows);
          const expected = new Float32Array(ids.length * 512);
          const actual = new Float32Array(ids.length * 512);
          jsKernels.embed(expected, reference, ids, 1.5);
          wasm.embed(actual, table, ids, 1.5);
          assert.ok(maxRelativeDiff(actual, expected) <= 1e-6, `${dtype} ${rows} rows: ${maxRelativeDiff(actual, expected)}`);
          assert.throws(() => wasm.embed(actual, table, [rows], 1), /outside the embedding's/);
        }
      }
    }
  });
});
