/**
 * Reference matmul. Weights stay in their stored width: bf16/f16 rows are widened into a small
 * scratch block of 4 rows at a time, and each x row is read once per 4 weight rows.
 */
import type { Weight } from "../kernels.js";
import { f16LookupTable } from "../../weights/dtype.js";
import { dequantizeQ8_0Row } from "../../weights/q8_0.js";
import { dequantizeQ4_0Row } from "../../weights/q4_0.js";
import { matmulQ4_0, matmulQ8_0 } from "./matmul-quantized.js";
import { matmulKQuant } from "./matmul-kquant.js";
import { isKQuant } from "../../weights/block-layout.js";
import { dequantizeKQuantRow } from "../../weights/k-quants.js";

const BLOCK_ROWS = 4;

/** Scratch for widened rows; Int32 view because storing `bits << 16` into it stays in integer range. */
let scratch = new Float32Array(0);
let scratchBits = new Int32Array(0);

function ensureScratch(values: number): void {
  if (scratch.length >= values) return;
  scratch = new Float32Array(values);
  scratchBits = new Int32Array(scratch.buffer);
}

/** Widens rows [firstRow, firstRow + rowCount) into scratch, row after row. */
function widenRowsToScratch(w: Weight, firstRow: number, rowCount: number): void {
  const count = rowCount * w.cols;
  ensureScratch(count);
  const { dtype } = w;
  if (dtype === "q8_0" || dtype === "q4_0" || isKQuant(dtype)) {
    for (let i = 0; i < rowCount; i++) {
      const row = scratch.subarray(i * w.cols, (i + 1) * w.cols);
      if (isKQuant(dtype)) dequantizeKQuantRow(dtype, w.data as Uint8Array, firstRow + i, w.cols, row);
      else (dtype === "q8_0" ? dequantizeQ8_0Row : dequantizeQ4_0Row)(w.data as Uint8Array, firstRow + i, w.cols, row);
    }
    return;
  }
  const start = firstRow * w.cols;
  const src = w.data as Uint16Array;
  if (w.dtype === "bf16") {
    for (let i = 0; i < count; i++) scratchBits[i] = src[start + i]! << 16;
  } else {
    const table = f16LookupTable();
    for (let i = 0; i < count; i++) scratch[i] = table[src[start + i]!]!;
  }
}

/** Weight row r as float32 (a view for f32 weights, a widened copy otherwise). */
export function weightRow(w: Weight, r: number): Float32Array {
  if (w.dtype === "f32") return (w.data as Float32Array).subarray(r * w.cols, (r + 1) * w.cols);
  widenRowsToScratch(w, r, 1);
  return scratch.subarray(0, w.cols);
}

export function matmul(out: Float32Array, x: Float32Array, w: Weight, seqLen: number): void {
  if (w.dtype === "q8_0" || w.dtype === "q4_0") {
    (w.dtype === "q8_0" ? matmulQ8_0 : matmulQ4_0)(out, x, w, seqLen);
    return;
  }
  if (isKQuant(w.dtype)) {
    matmulKQuant(out, x, w, seqLen);
    return;
  }
  const { rows, cols } = w;
  for (let r = 0; r < rows; r += BLOCK_ROWS) {
    const n = Math.min(BLOCK_ROWS, rows - r);
    let rowsData: Float32Array;
    let o0: number;
    if (w.dtype === "f32") {
      rowsData = w.data as Float32Array;
      o0 = r * cols;
    } else {
      widenRowsToScratch(w, r, n);
      rowsData = scratch;
      o0 = 0;
    }
    if (n === BLOCK_ROWS) {
      const o1 = o0 + cols,
        o2 = o1 + cols,
        o3 = o2 + cols;
      for (let s = 0; s < seqLen; s++) {
        const xs = s * cols;
        let a0 = 0,
          a1 = 0,
          a2 = 0,
          a3 = 0;
        for (let c = 0; c < cols; c++) {
          const xv = x[xs + c]!;
          a0 += xv * rowsData[o0 + c]!;
          a1 += xv * rowsData[o1 + c]!;
          a2 += xv * rowsData[o2 + c]!;
          a3 += xv * rowsData[o3 + c]!;
        }
        const at = s * rows + r;
        out[at] = a0;
        out[at + 1] = a1;
        out[at + 2] = a2;
        out[at + 3] = a3;
      }
    } else {
      for (let i = 0; i < n; i++) {
        const oi = o0 + i * cols;
        for (let s = 0; s < seqLen; s++) {
          const xs = s * cols;
          let acc = 0;
          for (let c = 0; c < cols; c++) acc += x[xs + c]! * rowsData[oi + c]!;
          out[s * rows + r + i] = acc;
        }
      }
    }
  }
}
