/**
 * Dequantization of llama.cpp's K-quant blocks (256 values each, ggml-quants.c). Published Gemma
 * GGUFs use Q4_K/Q5_K/Q6_K for some tensors; gemma-ts widens them row by row and re-quantizes to a
 * block type its kernels run (see gguf.ts), so they never exist whole in f32.
 */
import { f16LookupTable } from "./dtype.js";

export const QK_K = 256;
export type KQuantName = "Q4_K" | "Q5_K" | "Q6_K";

export const K_QUANT_BLOCK_BYTES: Readonly<Record<KQuantName, number>> = { Q4_K: 144, Q5_K: 176, Q6_K: 210 };

/** The 6-bit scale and min of sub-block j from the 12 packed scale bytes at `at`. */
function scaleMin(bytes: Uint8Array, at: number, j: number): [number, number] {
  if (j < 4) return [bytes[at + j]! & 63, bytes[at + j + 4]! & 63];
  const scale = (bytes[at + j + 4]! & 0x0f) | ((bytes[at + j - 4]! >> 6) << 4);
  const min = (bytes[at + j + 4]! >> 4) | ((bytes[at + j]! >> 6) << 4);
  return [scale, min];
}

/** Q4_K: f16 d, f16 dmin, 12 scale bytes, 128 bytes of nibbles; value = d·sc·q − dmin·m. */
function dequantizeQ4_KBlock(bytes: Uint8Array, at: number, out: Float32Array, o: number, half: Float32Array): void {
  const d = half[bytes[at]! | (bytes[at + 1]! << 8)]!;
  const dmin = half[bytes[at + 2]! | (bytes[at + 3]! << 8)]!;
  const qs = at + 16;
  for (let chunk = 0; chunk < 4; chunk++) {
    const [sc1, m1] = scaleMin(bytes, at + 4, 2 * chunk);
    const [sc2, m2] = scaleMin(bytes, at + 4, 2 * chunk + 1);
    const q = qs + 32 * chunk;
    for (let l = 0; l < 32; l++) {
      out[o + 64 * chunk + l] = d * sc1 * (bytes[q + l]! & 0x0f) - dmin * m1;
      out[o + 64 * chunk + 32 + l] = d * sc2 * (bytes[q + l]! >> 4) - dmin * m2;
    }
  }
}

/** Q5_K: as Q4_K plus 32 bytes of fifth bits (qh) before the nibbles. */
function dequantizeQ5_KBlock(bytes: Uint8Array, at: number, out: Float32Array, o: number, half: Float32Array): void {
  const d = half[bytes[at]! | (bytes[at + 1]! << 8)]!;
  const dmin = half[bytes[at + 2]! | (bytes[at + 3]! << 8)]!;
  const qh = at + 16;
  const qs = at + 48;
  for (let chunk = 0; chunk < 4; chunk++) {
    const [sc1, m1] = scaleMin(bytes, at + 4, 2 * chunk);
    const [sc2, m2] = scaleMin(bytes, at + 4, 2 * chunk + 1);
    const low = 1 << (2 * chunk);
    const high = 2 << (2 * chunk);
    const q = qs + 32 * chunk;
    for (let l = 0; l < 32; l++) {
      const h = bytes[qh + l]!;
      out[o + 64 * chunk + l] = d * sc1 * ((bytes[q + l]! & 0x0f) + (h & low ? 16 : 0)) - dmin * m1;
      out[o + 64 * chunk + 32 + l] = d * sc2 * ((bytes[q + l]! >> 4) + (h & high ? 16 : 0)) - dmin * m2;
    }
  }
}

/** Q6_K: 128 bytes low nibbles, 64 bytes high 2-bit pairs, 16 int8 scales, f16 d; q in [-32, 31]. */
function dequantizeQ6_KBlock(bytes: Uint8Array, at: number, out: Float32Array, o: number, half: Float32Array): void {
  const d = half[bytes[at + 208]! | (bytes[at + 209]! << 8)]!;
  for (let n = 0; n < 2; n++) {
    const ql = at + 64 * n;
    const qh = at + 128 + 32 * n;
    const sc = at + 192 + 8 * n;
    const y = o + 128 * n;
    for (let l = 0; l < 32; l++) {
      const is = l >> 4;
      const h = bytes[qh + l]!;
      const q1 = ((bytes[ql + l]! & 0x0f) | ((h & 3) << 4)) - 32;
      const q2 = ((bytes[ql + l + 32]! & 0x0f) | (((h >> 2) & 3) << 4)) - 32;
      const q3 = ((bytes[ql + l]! >> 4) | (((h >> 4) & 3) << 4)) - 32;
      const q4 = ((bytes[ql + l + 32]! >> 4) | (((h >> 6) & 3) << 4)) - 32;
      const s = (i: number) => d * ((bytes[sc + is + i]! << 24) >> 24);
      out[y + l] = s(0) * q1;
      out[y + l + 32] = s(2) * q2;
      out[y + l + 64] = s(4) * q3;
      out[y + l + 96] = s(6) * q4;
    }
  }
}

const BLOCK_DECODERS = { Q4_K: dequantizeQ4_KBlock, Q5_K: dequantizeQ5_KBlock, Q6_K: dequantizeQ6_KBlock };

/** Widens `out.length` values (a multiple of 256) of K-quant blocks starting at byte `at`. */
export function dequantizeKQuant(type: KQuantName, bytes: Uint8Array, at: number, out: Float32Array): void {
  const half = f16LookupTable();
  const decode = BLOCK_DECODERS[type];
  const blockBytes = K_QUANT_BLOCK_BYTES[type];
  for (let b = 0; b < out.length / QK_K; b++) decode(bytes, at + b * blockBytes, out, b * QK_K, half);
}
