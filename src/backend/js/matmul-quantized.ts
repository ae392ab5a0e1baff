/**
 * Reference Q8_0 and Q4_0 matmuls, as llama.cpp computes them: each row of activations is quantized
 * to int8 blocks of 32 (an f32 scale each, computed in f32, round half away from zero), then every
 * weight block is dotted with its activation block in integers and scaled by d_w · d_x.
 */
import type { Weight } from "../kernels.js";
import { Q8_0 } from "../../weights/block-layout.js";
import { f16LookupTable } from "../../weights/dtype.js";
import { q4_0Block } from "../../weights/q4_0.js";
import { Q8_0_BLOCK, Q8_0_BLOCK_BYTES, roundHalfAway } from "../../weights/q8_0.js";

/** Activation blocks of one row: scales[b] and values[b·32 + i]. */
export function quantizeActivationRow(x: Float32Array, offset: number, cols: number): { scales: Float32Array; values: Int8Array } {
  const blocks = cols / Q8_0_BLOCK;
  const scales = new Float32Array(blocks);
  const values = new Int8Array(cols);
  for (let b = 0; b < blocks; b++) {
    let amax = 0;
    for (let i = 0; i < Q8_0_BLOCK; i++) amax = Math.max(amax, Math.abs(x[offset + b * Q8_0_BLOCK + i]!));
    const d = Math.fround(amax / 127);
    const inverse = d === 0 ? 0 : Math.fround(1 / d);
    scales[b] = d;
    for (let i = 0; i < Q8_0_BLOCK; i++) values[b * Q8_0_BLOCK + i] = roundHalfAway(Math.fround(x[offset + b * Q8_0_BLOCK + i]! * inverse));
  }
  return { scales, values };
}

export function matmulQ4_0(out: Float32Array, x: Float32Array, w: Weight, seqLen: number): void {
  const { rows, cols } = w;
  const data = w.data as Uint8Array;
  const blocks = cols / Q8_0_BLOCK;
  const weights = new Int8Array(Q8_0_BLOCK);
  for (let s = 0; s < seqLen; s++) {
    const { scales, values } = quantizeActivationRow(x, s * cols, cols);
    for (let r = 0; r < rows; r++) {
      let acc = 0;
      for (let b = 0; b < blocks; b++) {
        const d = q4_0Block(data, r, b, cols, weights);
        let isum = 0;
        for (let i = 0; i < Q8_0_BLOCK; i++) isum += weights[i]! * values[b * Q8_0_BLOCK + i]!;
        acc += isum * d * scales[b]!;
      }
      out[s * rows + r] = acc;
    }
  }
}

export function matmulQ8_0(out: Float32Array, x: Float32Array, w: Weight, seqLen: number): void {
  const { rows, cols } = w;
  const data = w.data as Uint8Array;
  const table = f16LookupTable();
  const blocks = cols / Q8_0_BLOCK;
  const rowBytes = blocks * Q8_0_BLOCK_BYTES;
  for (let s = 0; s < seqLen; s++) {
    const { scales, values } = quantizeActivationRow(x, s * cols, cols);
    for (let r = 0; r < rows; r++) {
      let acc = 0;
      for (let b = 0; b < blocks; b++) {
        const at = r * rowBytes + b * Q8_0_BLOCK_BYTES;
        let isum = 0;
        for (let i = 0; i < Q8_0_BLOCK; i++) isum += ((data[at + Q8_0.quantsOffset + i]! << 24) >> 24) * values[b * Q8_0_BLOCK + i]!;
        acc += isum * table[data[at]! | (data[at + 1]! << 8)]! * scales[b]!;
      }
      out[s * rows + r] = acc;
    }
  }
}
