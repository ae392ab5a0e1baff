/**
 * Q8_0, llama.cpp's 8-bit block layout, used unchanged from file (GGUF) or load-time quantization to
 * kernel: every 32 consecutive values of a row are one block (block-layout.ts), an f16 scale d
 * followed by 32 int8 q, value = d · q, with d = max|x| / 127.
 */
import { blockRowBytes, Q8_0, QK } from "./block-layout.js";
import { f16LookupTable, f32ToF16 } from "./dtype.js";

export const Q8_0_BLOCK = QK;
export const Q8_0_BLOCK_BYTES = Q8_0.blockBytes;

export function q8_0RowBytes(cols: number): number {
  return blockRowBytes(Q8_0, cols);
}

/** Round half away from zero, as C's roundf (llama.cpp). */
export function roundHalfAway(v: number): number {
  const q = Math.floor(Math.abs(v) + 0.5);
  return v < 0 ? -q : q;
}

/** Quantizes one row of f32 values into `out` at byte `offset`, as llama.cpp's quantize_row_q8_0. */
export function quantizeQ8_0Row(values: Float32Array, out: Uint8Array, offset: number): void {
  const view = new DataView(out.buffer, out.byteOffset);
  for (let b = 0; b < values.length / Q8_0_BLOCK; b++) {
    let amax = 0;
    for (let i = 0; i < Q8_0_BLOCK; i++) amax = Math.max(amax, Math.abs(values[b * Q8_0_BLOCK + i]!));
    const d = amax / 127;
    const inverse = d === 0 ? 0 : 1 / d;
    const at = offset + b * Q8_0_BLOCK_BYTES;
    view.setUint16(at, f32ToF16(d), true);
    for (let i = 0; i < Q8_0_BLOCK; i++) out[at + Q8_0.quantsOffset + i] = roundHalfAway(values[b * Q8_0_BLOCK + i]! * inverse) & 0xff;
  }
}

/** Row r of a Q8_0 matrix as f32 values in `out`. */
export function dequantizeQ8_0Row(data: Uint8Array, r: number, cols: number, out: Float32Array): void {
  const table = f16LookupTable();
  const base = r * q8_0RowBytes(cols);
  for (let b = 0; b < cols / Q8_0_BLOCK; b++) {
    const at = base + b * Q8_0_BLOCK_BYTES;
    const d = table[data[at]! | (data[at + 1]! << 8)]!;
    for (let i = 0; i < Q8_0_BLOCK; i++) out[b * Q8_0_BLOCK + i] = d * ((data[at + Q8_0.quantsOffset + i]! << 24) >> 24);
  }
}
