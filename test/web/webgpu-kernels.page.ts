/**
 * Runs in the page (bundled by webgpu-kernels.test.ts): every WebGPU kernel against the TypeScript
 * reference on random inputs with odd sizes; reports the largest difference of each.
 */
import { attention } from "../../src/backend/js/attention.js";
import { addInPlace, embed, geglu, rmsnorm, rope, softcap } from "../../src/backend/js/elementwise.js";
import { matmul } from "../../src/backend/js/matmul.js";
import type { Weight } from "../../src/backend/kernels.js";
import { GpuKernelRunner } from "../../src/backend/webgpu/runner.js";
import { f32ToBf16, f32ToF16 } from "../../src/weights/dtype.js";
import { toBlocks, widenRow } from "../../src/weights/matrix-rows.js";
import { randomKQuantWeight } from "../helpers/k-quant-blocks.js";

let seed = 12345;
const random = (n: number, scale = 1) =>
  Float32Array.from({ length: n }, () => {
    seed = (seed * 1103515245 + 12345) >>> 0;
    return (seed / 2 ** 32 - 0.5) * 2 * scale;
  });
const maxDiff = (a: Float32Array, b: Float32Array) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i]!)), 0);

/** The same matrix as f32 (what the shader's dequantization must reproduce). */
function widened(w: Weight): Weight {
  const data = new Float32Array(w.rows * w.cols);
  const row = new Float32Array(w.cols);
  for (let r = 0; r < w.rows; r++) {
    widenRow(row, w.data, w.dtype, r, w.cols);
    data.set(row, r * w.cols);
  }
  return { dtype: "f32", rows: w.rows, cols: w.cols, data };
}

async function run(): Promise<Record<string, number> | string> {
  const gpu = (navigator as Navigator & { gpu?: GPU }).gpu;
  if (!gpu) return "no navigator.gpu";
  const k = await GpuKernelRunner.create(gpu);
  if (!k) return "no WebGPU adapter";
  const results: Record<string, number> = {};

  const ids = [5, 0, 66, 13];
  // Matmuls: odd row counts and token counts (19: two whole tiles of 8 tokens and a partial one);
  // column counts in whole 32-value blocks for Q8_0/Q4_0.
  const [rows, cols, seqLen] = [67, 96, 19];
  const x = random(seqLen * cols);
  const f32: Weight = { dtype: "f32", rows, cols, data: random(rows * cols, 0.5) };
  const f32Data = f32.data as Float32Array;
  const variants: Weight[] = [
    f32,
    { dtype: "f16", rows, cols, data: Uint16Array.from(f32Data, f32ToF16) },
    { dtype: "bf16", rows, cols, data: Uint16Array.from(f32Data, f32ToBf16) },
    { dtype: "q8_0", rows, cols, data: toBlocks(f32Data, "f32", rows, cols, "q8_0") },
    { dtype: "q4_0", rows, cols, data: toBlocks(f32Data, "f32", rows, cols, "q4_0") },
  ];
  for (const w of variants) {
    const expected = new Float32Array(seqLen * rows);
    matmul(expected, x, widened(w), seqLen);
    const actual = new Float32Array(seqLen * rows);
    await k.matmul(actual, x, w, seqLen);
    results[`matmul ${w.dtype}`] = maxDiff(actual, expected);
  }
  // The optional features the runner's device has (subgroups, shader-f16), and the same matmuls on
  // a device made without them: both shader paths.
  results["device has subgroups"] = k.features.subgroups ? 1 : 0;
  results["device has shader-f16"] = k.features.f16 ? 1 : 0;
  const plain = (await GpuKernelRunner.create(gpu, { plain: true }))!;
  for (const w of variants) {
    const expected = new Float32Array(seqLen * rows);
    matmul(expected, x, widened(w), seqLen);
    const actual = new Float32Array(seqLen * rows);
    await plain.matmul(actual, x, w, seqLen);
    results[`matmul ${w.dtype}, device without optional features`] = maxDiff(actual, expected);
  }
  plain.destroy();
  // K-quants: whole 256-value super-blocks, as GGUF stores them.
  const kx = random(seqLen * 512);
  for (const dtype of ["q4_k", "q5_k", "q6_k"] as const) {
    const w = randomKQuantWeight(dtype, rows, 512, 3);
    const expected = new Float32Array(seqLen * rows);
    matmul(expected, kx, widened(w), seqLen);
    const actual = new Float32Array(seqLen * rows);
    await k.matmul(actual, kx, w, seqLen);
    results[`matmul ${dtype}`] = maxDiff(actual, expected);
    const embedExpected = new Float32Array(ids.length * 512);
    embed(embedExpected, widened(w), ids, 1.7);
    const embedActual = new Float32Array(ids.length * 512);
    await k.embed(embedActual, w, ids, 1.7);
    results[`embed ${dtype}`] = maxDiff(embedActual, embedExpected);
  }
  // More rows than one grid dimension holds: the 2-D row grid.
  const tall: Weight = { dtype: "f32", rows: 40_001, cols: 5, data: random(40_001 * 5) };
  const tallX = random(5);
  const tallExpected = new Float32Array(tall.rows);
  matmul(tallExpected, tallX, tall, 1);
  const tallActual = new Float32Array(tall.rows);
  await k.matmul(tallActual, tallX, tall, 1);
  results["matmul f32, 40001 rows"] = maxDiff(tallActual, tallExpected);

  for (const w of [variants[0]!, variants[1]!, variants[3]!, variants[4]!]) {
    const expected = new Float32Array(ids.length * cols);
    embed(expected, widened(w), ids, 1.7);
    const actual = new Float32Array(ids.length * cols);
    await k.embed(actual, w, ids, 1.7);
    results[`embed ${w.dtype}`] = maxDiff(actual, expected);
  }

  const dim = 77;
  const normIn = random(5 * dim, 3);
  const gain = random(dim);
  const normExpected = new Float32Array(normIn.length);
  rmsnorm(normExpected, normIn, gain, 5, dim, 1e-6);
  const normActual = new Float32Array(normIn.length);
  await k.rmsnorm(normActual, normIn, gain, 5, dim, 1e-6);
  results["rmsnorm"] = maxDiff(normActual, normExpected);

  // RoPE with a partial rotation (10 of 13 pairs, like RecurrentGemma's) at position 1000.
  const [heads, headDim] = [3, 26];
  const invFreq = Float32Array.from({ length: 10 }, (_, j) => 1 / 10000 ** ((2 * j) / headDim));
  const ropeIn = random(4 * heads * headDim);
  const ropeExpected = ropeIn.slice();
  rope(ropeExpected, 4, heads, headDim, 1000, invFreq);
  const ropeActual = ropeIn.slice();
  await k.rope(ropeActual, 4, heads, headDim, 1000, invFreq);
  results["rope"] = maxDiff(ropeActual, ropeExpected);

  // Attention: GQA (6 query heads on 2 KV heads), a ring of past keys, soft-cap, sliding window.
  for (const [what, softcapValue, window] of [
    ["attention (global, soft-cap 50)", 50, null],
    ["attention (window 5, no soft-cap)", null, 5],
  ] as const) {
    const [nHeads, nKvHeads, hd, startPos, len, capacity] = [6, 2, 20, 9, 3, 7];
    const args = {
      q: random(len * nHeads * hd),
      newK: random(len * nKvHeads * hd),
      newV: random(len * nKvHeads * hd),
      pastK: random(capacity * nKvHeads * hd),
      pastV: random(capacity * nKvHeads * hd),
      pastCapacity: capacity,
      startPos,
      seqLen: len,
      nHeads,
      nKvHeads,
      headDim: hd,
      scale: hd ** -0.5,
      softcap: softcapValue,
      window,
    };
    const expected = new Float32Array(len * nHeads * hd);
    attention({ ...args, out: expected });
    const actual = new Float32Array(len * nHeads * hd);
    await k.attention({ ...args, out: actual });
    results[what] = maxDiff(actual, expected);
  }

  const n = 1001;
  for (const activation of ["gelu_tanh", "gelu_exact"] as const) {
    const gate = random(n, 4);
    const up = random(n);
    const expected = new Float32Array(n);
    geglu(expected, gate, up, n, activation);
    const actual = new Float32Array(n);
    await k.geglu(actual, gate, up, n, activation);
    results[`geglu ${activation}`] = maxDiff(actual, expected);
  }
  const capped = random(n, 80);
  const cappedExpected = capped.slice();
  softcap(cappedExpected, n, 30);
  const cappedActual = capped.slice();
  await k.softcap(cappedActual, n, 30);
  results["softcap"] = maxDiff(cappedActual, cappedExpected);
  const sumA = random(n);
  const sumB = random(n);
  const sumExpected = sumA.slice();
  addInPlace(sumExpected, sumB, n);
  const sumActual = sumA.slice();
  await k.addInPlace(sumActual, sumB, n);
  results["add"] = maxDiff(sumActual, sumExpected);
  k.destroy();
  return results;
}

(window as unknown as { webgpuKernels: Promise<Record<string, number> | string> }).webgpuKernels = run().catch(
  (e) => `error: ${(e as Error).message}`,
);
