/**
 * Q4_0, llama.cpp's 4-bit block layout: every 32 values of a row are one block (block-layout.ts), an f16
 * scale d then 16 bytes whose low nibbles hold values 0..15 and high nibbles values 16..31,
 * value = (nibble − 8) · d, with d = (the value of largest magnitude) / −8.
 */
import { blockRowBytes, Q4_0, QK } from "./block-layout.js";
import { f16LookupTable, f32ToF16 } from "./dtype.js";

export const Q4_0_BLOCK = QK;
export const Q4_0_BLOCK_BYTES = Q4_0.blockBytes;

export function q4_0RowBytes(cols: number): number {
  return blockRowBytes(Q4_0, cols);
}

/** Quantizes one row into `out` at byte `offset`, as llama.cpp's quantize_row_q4_0_ref. */
export function quantizeQ4_0Row(values: Float32Array, out: Uint8Array, offset: number): void {
  for (let b = 0; b < values.length / Q4_0_BLOCK; b++) {
    let max = 0;
    for (let i = 0; i < Q4_0_BLOCK; i++) {
      const v = values[b * Q4_0_BLOCK + i]!;
      if (Math.abs(v) > Math.abs(max)) max = v;
    }
    const d = max / -8;
    const inverse = d === 0 ? 0 : 1 / d;
    const at = offset + b * Q4_0_BLOCK_BYTES;
    const bits = f32ToF16(d);
    out[at] = bits & 0xff;
    out[at + 1] = bits >>> 8;
    const nibble = (v: number) => Math.min(15, Math.trunc(v * inverse + 8.5));
    for (let j = 0; j < 16; j++)
      out[at + Q4_0.quantsOffset + j] = nibble(values[b * Q4_0_BLOCK + j]!) | (nibble(values[b * Q4_0_BLOCK + 16 + j]!) << 4);
  }
}

/** Block b of row r as 32 signed values (nibble − 8) and its scale. */
export function q4_0Block(data: Uint8Array, r: number, b: number, cols: number, values: Int8Array): number {
  const at = r * q4_0RowBytes(cols) + b * Q4_0_BLOCK_BYTES;
  for (let j = 0; j < 16; j++) {
    values[j] = (data[at + Q4_0.quantsOffset + j]! & 0x0f) - 8;
    values[j + 16] = (data[at + Q4_0.quantsOffset + j]! >> 4) - 8;
  }
  return f16LookupTable()[data[at]! | (data[at + 1]! << 8)]!;
}

export function dequantizeQ4_0Row(data: Uint8Array, r: number, cols: number, out: Float32Array): void {
  const values = new Int8Array(Q4_0_BLOCK);
  for (let b = 0; b < cols / Q4_0_BLOCK; b++) {
    const d = q4_0Block(data, r, b, cols, values);
    for (let i = 0; i < Q4_0_BLOCK; i++) out[b * Q4_0_BLOCK + i] = values[i]! * d;
  }
}
