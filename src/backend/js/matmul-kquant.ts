/**
 * Reference matmul of K-quant weights (Q4_K, Q5_K, Q6_K as GGUF stores them) against activations
 * quantized to int8 blocks of 32 as for Q8_0/Q4_0 (matmul-quantized.ts). Each 32-value activation
 * block is dotted in integers with its part of a super-block:
 *   Q4_K/Q5_K (one sub-block j):  d_x · (d·scale_j · Σ q·x − dmin·min_j · Σ x)
 *   Q6_K (two 16-value halves):   d_x · d · (scale_lo · Σ (q − 32)·x + scale_hi · Σ (q − 32)·x)
 * llama.cpp quantizes activations per 256 (Q8_K) instead; per 32 keeps the existing activation
 * path and is the finer of the two. The WebAssembly kernels compute the same sums.
 */
import type { Weight } from "../kernels.js";
import { QK } from "../../weights/block-layout.js";
import { decodeKBlock, kBlockInts, kQuantRowBytes, QK_K, type KQuantDtype } from "../../weights/k-quants.js";
import { quantizeActivationRow } from "./matmul-quantized.js";

export function matmulKQuant(out: Float32Array, x: Float32Array, w: Weight, seqLen: number): void {
  const dtype = w.dtype as KQuantDtype;
  const { rows, cols } = w;
  const data = w.data as Uint8Array;
  const rowBytes = kQuantRowBytes(dtype, cols);
  const blockBytes = (rowBytes * QK_K) / cols;
  const block = kBlockInts();
  const activations = Array.from({ length: seqLen }, (_, s) => quantizeActivationRow(x, s * cols, cols));
  const sums = activations.map(({ values }) => {
    const blockSums = new Int32Array(cols / QK);
    for (let i = 0; i < cols; i++) blockSums[Math.floor(i / QK)]! += values[i]!;
    return blockSums;
  });
  for (let r = 0; r < rows; r++) {
    const acc = new Float64Array(seqLen);
    for (let sb = 0; sb < cols / QK_K; sb++) {
      decodeKBlock(dtype, data, r * rowBytes + sb * blockBytes, block);
      for (let j = 0; j < QK_K / QK; j++) {
        const b = sb * (QK_K / QK) + j;
        for (let s = 0; s < seqLen; s++) {
          const { scales, values } = activations[s]!;
          const y = b * QK;
          if (dtype === "q6_k") {
            let lo = 0;
            let hi = 0;
            for (let l = 0; l < 16; l++) lo += (block.q[32 * j + l]! - 32) * values[y + l]!;
            for (let l = 16; l < 32; l++) hi += (block.q[32 * j + l]! - 32) * values[y + l]!;
            acc[s]! += scales[b]! * block.d * (block.scales[2 * j]! * lo + block.scales[2 * j + 1]! * hi);
          } else {
            let isum = 0;
            for (let l = 0; l < QK; l++) isum += block.q[32 * j + l]! * values[y + l]!;
            acc[s]! += scales[b]! * (block.d * block.scales[j]! * isum - block.dmin * block.mins[j]! * sums[s]![b]!);
          }
        }
      }
    }
    for (let s = 0; s < seqLen; s++) out[s * rows + r] = acc[s]!;
  }
}
