/**
 * Row access to a matrix in any held form (float widths, Q8_0/Q4_0 blocks, K-quant super-blocks),
 * and conversion to a smaller block type one row at a time, so no matrix is ever widened whole to f32.
 */
import { BLOCK_LAYOUTS, blockRowBytes, isBlockDtype, isKQuant } from "./block-layout.js";
import { widenInto, type MatrixDtype } from "./dtype.js";
import { dequantizeKQuantRow } from "./k-quants.js";
import { dequantizeQ4_0Row, q4_0RowBytes, quantizeQ4_0Row } from "./q4_0.js";
import { dequantizeQ8_0Row, q8_0RowBytes, quantizeQ8_0Row } from "./q8_0.js";

export type MatrixData = Float32Array | Uint16Array | Uint8Array;
/** The block types gemma-ts quantizes to (K-quants are read, never written). */
export type QuantizeTarget = "q8_0" | "q4_0";

/** Row r of a [rows, cols] matrix as f32 values in `out` (length cols). */
export function widenRow(out: Float32Array, data: MatrixData, dtype: MatrixDtype, r: number, cols: number): void {
  if (dtype === "q8_0") dequantizeQ8_0Row(data as Uint8Array, r, cols, out);
  else if (dtype === "q4_0") dequantizeQ4_0Row(data as Uint8Array, r, cols, out);
  else if (isKQuant(dtype)) dequantizeKQuantRow(dtype, data as Uint8Array, r, cols, out);
  else widenInto(out, data as Float32Array | Uint16Array, dtype, r * cols, cols);
}

/** Bytes of one row of `cols` values held as `dtype`. */
export function matrixRowBytes(dtype: MatrixDtype, cols: number): number {
  if (isBlockDtype(dtype)) return blockRowBytes(BLOCK_LAYOUTS[dtype], cols);
  return cols * (dtype === "f32" ? 4 : 2);
}

/** Bits per value, to tell whether a conversion shrinks a matrix. */
const WIDTH: Readonly<Record<MatrixDtype, number>> = {
  f32: 32,
  f16: 16,
  bf16: 16,
  q8_0: 8.5,
  q4_0: 4.5,
  q4_k: 4.5,
  q5_k: 5.5,
  q6_k: 6.5625,
};

/** True when converting `from` to `to` loses width (quantizing never widens a matrix). */
export function narrows(from: MatrixDtype, to: QuantizeTarget): boolean {
  return WIDTH[to] < WIDTH[from];
}

/** Re-encodes a matrix as Q8_0 or Q4_0 blocks (cols must be a multiple of 32). */
export function toBlocks(data: MatrixData, dtype: MatrixDtype, rows: number, cols: number, target: QuantizeTarget): Uint8Array {
  const rowBytes = target === "q8_0" ? q8_0RowBytes(cols) : q4_0RowBytes(cols);
  const quantizeRow = target === "q8_0" ? quantizeQ8_0Row : quantizeQ4_0Row;
  const out = new Uint8Array(rows * rowBytes);
  const row = new Float32Array(cols);
  for (let r = 0; r < rows; r++) {
    widenRow(row, data, dtype, r, cols);
    quantizeRow(row, out, r * rowBytes);
  }
  return out;
}
