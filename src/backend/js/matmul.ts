/** Reference matmul: widens one weight row at a time, so bf16/f16 weights stay narrow in memory. */
import type { Weight } from "../kernels.js";
import { f16LookupTable } from "../../weights/dtype.js";

let rowScratch = new Float32Array(0);
let rowBits = new Uint32Array(0);

/** Returns weight row r as float32: a view for f32 weights, a widened scratch copy otherwise. */
export function weightRow(w: Weight, r: number): Float32Array {
  const start = r * w.cols;
  if (w.dtype === "f32") return (w.data as Float32Array).subarray(start, start + w.cols);
  if (rowScratch.length < w.cols) {
    rowScratch = new Float32Array(w.cols);
    rowBits = new Uint32Array(rowScratch.buffer);
  }
  const src = w.data as Uint16Array;
  if (w.dtype === "bf16") {
    for (let c = 0; c < w.cols; c++) rowBits[c] = src[start + c]! << 16;
  } else {
    const table = f16LookupTable();
    for (let c = 0; c < w.cols; c++) rowScratch[c] = table[src[start + c]!]!;
  }
  return rowScratch;
}

export function matmul(out: Float32Array, x: Float32Array, w: Weight, seqLen: number): void {
  const { rows, cols } = w;
  for (let r = 0; r < rows; r++) {
    const row = weightRow(w, r);
    for (let s = 0; s < seqLen; s++) {
      const base = s * cols;
      let a0 = 0, a1 = 0, a2 = 0, a3 = 0;
      let c = 0;
      for (; c + 3 < cols; c += 4) {
        a0 += x[base + c]! * row[c]!;
        a1 += x[base + c + 1]! * row[c + 1]!;
        a2 += x[base + c + 2]! * row[c + 2]!;
        a3 += x[base + c + 3]! * row[c + 3]!;
      }
      for (; c < cols; c++) a0 += x[base + c]! * row[c]!;
      out[s * rows + r] = a0 + a1 + a2 + a3;
    }
  }
}
