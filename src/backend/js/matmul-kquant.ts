/**
 * Reference matmul of K-quant weights (Q4_K, Q5_K, Q6_K as GGUF stores them), as llama.cpp
 * computes it: each row of activations is quantized to int8 with one f32 scale d_x per 256 values
 * (Q8_K, rounded as for Q8_0) and the sums of each 16, then every super-block is dotted in integers:
 *   Q4_K/Q5_K:  d_x · (d · Σ_j scale_j·Σ q·x − dmin · Σ_j min_j·Σ x)   over its eight 32-value sub-blocks
 *   Q6_K:       d_x · d · (Σ_k scale_k·Σ q·x − 32 · Σ_k scale_k·Σ x)    over its sixteen 16-value sub-blocks
 * The WebAssembly kernels compute the same integer sums.
 */
import type { Weight } from "../kernels.js";
import { decodeKBlock, kBlockInts, kQuantRowBytes, QK_K, type KQuantDtype } from "../../weights/k-quants.js";
import { roundHalfAway } from "../../weights/q8_0.js";

/** One row of activations as K blocks: scales[b], values[b·256 + i], sums[b·16 + k] of values 16k..16k+15. */
export function quantizeActivationRowK(x: Float32Array, offset: number, cols: number) {
  const blocks = cols / QK_K;
  const scales = new Float32Array(blocks);
  const values = new Int8Array(cols);
  const sums = new Int32Array(cols / 16);
  for (let b = 0; b < blocks; b++) {
    let amax = 0;
    for (let i = 0; i < QK_K; i++) amax = Math.max(amax, Math.abs(x[offset + b * QK_K + i]!));
    const d = Math.fround(amax / 127);
    const inverse = d === 0 ? 0 : Math.fround(1 / d);
    scales[b] = d;
    for (let i = 0; i < QK_K; i++) {
      const q = roundHalfAway(Math.fround(x[offset + b * QK_K + i]! * inverse));
      values[b * QK_K + i] = q;
      sums[(b * QK_K + i) >> 4]! += q;
    }
  }
  return { scales, values, sums };
}

export function matmulKQuant(out: Float32Array, x: Float32Array, w: Weight, seqLen: number): void {
  const dtype = w.dtype as KQuantDtype;
  const { rows, cols } = w;
  const data = w.data as Uint8Array;
  const rowBytes = kQuantRowBytes(dtype, cols);
  const blockBytes = (rowBytes * QK_K) / cols;
  const block = kBlockInts();
  const activations = Array.from({ length: seqLen }, (_, s) => quantizeActivationRowK(x, s * cols, cols));
  for (let r = 0; r < rows; r++) {
    const acc = new Float64Array(seqLen);
    for (let sb = 0; sb < cols / QK_K; sb++) {
      decodeKBlock(dtype, data, r * rowBytes + sb * blockBytes, block);
      for (let s = 0; s < seqLen; s++) {
        const { scales, values, sums } = activations[s]!;
        const y = sb * QK_K;
        let isum = 0;
        let msum = 0;
        if (dtype === "q6_k") {
          for (let k = 0; k < 16; k++) {
            let dot = 0;
            for (let l = 0; l < 16; l++) dot += block.q[16 * k + l]! * values[y + 16 * k + l]!;
            isum += block.scales[k]! * (dot - 32 * sums[sb * 16 + k]!);
          }
          acc[s]! += scales[sb]! * block.d * isum;
          continue;
        }
        for (let j = 0; j < 8; j++) {
          let dot = 0;
          for (let l = 0; l < 32; l++) dot += block.q[32 * j + l]! * values[y + 32 * j + l]!;
          isum += block.scales[j]! * dot;
          msum += block.mins[j]! * (sums[sb * 16 + 2 * j]! + sums[sb * 16 + 2 * j + 1]!);
        }
        acc[s]! += scales[sb]! * (block.d * isum - block.dmin * msum);
      }
    }
    for (let s = 0; s < seqLen; s++) out[s * rows + r] = acc[s]!;
  }
}
