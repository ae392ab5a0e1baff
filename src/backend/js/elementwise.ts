/** Reference element-wise and row-wise kernels: RMSNorm, RoPE, GeGLU, soft-cap, residual add, embedding. */
import type { Activation } from "../kernels.js";
import type { Weight } from "../kernels.js";
import { weightRow } from "./matmul.js";

export function rmsnorm(out: Float32Array, x: Float32Array, gain: Float32Array, seqLen: number, dim: number, eps: number): void {
  for (let s = 0; s < seqLen; s++) {
    const base = s * dim;
    let sumSq = 0;
    for (let i = 0; i < dim; i++) sumSq += x[base + i]! * x[base + i]!;
    const inv = 1 / Math.sqrt(sumSq / dim + eps);
    for (let i = 0; i < dim; i++) out[base + i] = x[base + i]! * inv * gain[i]!;
  }
}

/** cos and sin of position · invFreq[j] for positions [start, start + count), row per position. */
export interface RopeTable {
  start: number;
  count: number;
  cos: Float32Array;
  sin: Float32Array;
}

/**
 * The last table built for each frequency array: the queries and keys of every layer that shares
 * the array rotate by the same angles, so a forward pass computes them once, not twice per layer.
 */
const ropeTables = new WeakMap<Float32Array, RopeTable>();

/** cos and sin of (position · invFreq[j]) for positions start.. (at least count of them), built as the references do. */
export function ropeTable(invFreq: Float32Array, start: number, count: number): RopeTable {
  const held = ropeTables.get(invFreq);
  if (held && held.start <= start && start + count <= held.start + held.count) return held;
  const half = invFreq.length;
  const table = { start, count, cos: new Float32Array(count * half), sin: new Float32Array(count * half) };
  for (let s = 0; s < count; s++) {
    const pos = start + s;
    for (let j = 0; j < half; j++) {
      // The reference builds angles in float32 (gemma_pytorch's complex64 table, HF's fp32 freqs).
      const angle = Math.fround(pos * invFreq[j]!);
      table.cos[s * half + j] = Math.cos(angle);
      table.sin[s * half + j] = Math.sin(angle);
    }
  }
  ropeTables.set(invFreq, table);
  return table;
}

/** NeoX rotation: (x1, x2) → (x1·cos − x2·sin, x2·cos + x1·sin) on pairs (j, j + half) of each head (§2.2.3). */
export function rope(x: Float32Array, seqLen: number, nHeads: number, headDim: number, startPos: number, invFreq: Float32Array): void {
  const half = invFreq.length;
  const { start, cos, sin } = ropeTable(invFreq, startPos, seqLen);
  for (let s = 0; s < seqLen; s++) {
    const t = (startPos + s - start) * half;
    for (let h = 0; h < nHeads; h++) {
      const base = (s * nHeads + h) * headDim;
      for (let j = 0; j < half; j++) {
        const x1 = x[base + j]!;
        const x2 = x[base + half + j]!;
        x[base + j] = x1 * cos[t + j]! - x2 * sin[t + j]!;
        x[base + half + j] = x2 * cos[t + j]! + x1 * sin[t + j]!;
      }
    }
  }
}

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);

export function geluTanh(v: number): number {
  return 0.5 * v * (1 + Math.tanh(SQRT_2_OVER_PI * (v + 0.044715 * v * v * v)));
}

/** Exact GELU, v·Φ(v); erf from Abramowitz & Stegun 7.1.26 refined, |error| < 1.2e-7. */
export function geluExact(v: number): number {
  return 0.5 * v * (1 + erf(v / Math.SQRT2));
}

function erf(x: number): number {
  // Numerical Recipes erfc (Chebyshev fit, fractional error < 1.2e-7).
  const z = Math.abs(x);
  const t = 1 / (1 + 0.5 * z);
  const r =
    t *
    Math.exp(
      -z * z -
        1.26551223 +
        t *
          (1.00002368 +
            t *
              (0.37409196 +
                t *
                  (0.09678418 +
                    t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))),
    );
  return x >= 0 ? 1 - r : r - 1;
}

export function geglu(out: Float32Array, gate: Float32Array, up: Float32Array, n: number, activation: Activation): void {
  const act = activation === "gelu_tanh" ? geluTanh : geluExact;
  for (let i = 0; i < n; i++) out[i] = act(gate[i]!) * up[i]!;
}

export function addInPlace(out: Float32Array, x: Float32Array, n: number): void {
  for (let i = 0; i < n; i++) out[i]! += x[i]!;
}

export function softcap(x: Float32Array, n: number, cap: number): void {
  for (let i = 0; i < n; i++) x[i] = cap * Math.tanh(x[i]! / cap);
}

export function embed(out: Float32Array, table: Weight, ids: ArrayLike<number>, scale: number): void {
  for (let s = 0; s < ids.length; s++) {
    const row = weightRow(table, ids[s]!);
    const base = s * table.cols;
    for (let i = 0; i < table.cols; i++) out[base + i] = row[i]! * scale;
  }
}

export function addBias(x: Float32Array, bias: Float32Array, seqLen: number, dim: number): void {
  for (let s = 0; s < seqLen; s++) {
    const base = s * dim;
    for (let i = 0; i < dim; i++) x[base + i]! += bias[i]!;
  }
}
