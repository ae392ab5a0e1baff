/**
 * llama.cpp's K-quant super-blocks (256 values each; layouts in block-layout.ts) decoded to their
 * integers: the quants, each sub-block's scale and min, and the two f16 multipliers. Dequantizing
 * and the reference matmul (backend/js/matmul-kquant.ts) both start here, so the bit layouts are
 * written down once on the TypeScript side.
 */
import { blockRowBytes, Q4_K, Q5_K, Q6_K, QK_K, type KQuantDtype } from "./block-layout.js";
import { f16LookupTable } from "./dtype.js";

export { QK_K, type KQuantDtype };

/** GGUF's names of the K-quant types gemma-ts reads. */
export type KQuantName = "Q4_K" | "Q5_K" | "Q6_K";

export const K_QUANT_DTYPE: Readonly<Record<KQuantName, KQuantDtype>> = { Q4_K: "q4_k", Q5_K: "q5_k", Q6_K: "q6_k" };

const LAYOUT = { q4_k: Q4_K, q5_k: Q5_K, q6_k: Q6_K } as const;

export function kQuantRowBytes(dtype: KQuantDtype, cols: number): number {
  return blockRowBytes(LAYOUT[dtype], cols);
}

/** One super-block as integers. */
export interface KBlockInts {
  /** The 256 quants, unsigned: Q4_K 0..15, Q5_K 0..31, Q6_K 0..63 (its value is q − 32). */
  readonly q: Uint8Array;
  /** Per sub-block: eight 6-bit scales of 32 values (Q4_K, Q5_K) or sixteen int8 scales of 16 values (Q6_K). */
  readonly scales: Int32Array;
  /** Eight 6-bit mins (Q4_K, Q5_K; unused for Q6_K). */
  readonly mins: Int32Array;
  d: number;
  dmin: number;
}

export function kBlockInts(): KBlockInts {
  return { q: new Uint8Array(QK_K), scales: new Int32Array(16), mins: new Int32Array(8), d: 0, dmin: 0 };
}

/** The 6-bit scale and min of sub-block j from the 12 packed bytes at `at` (get_scale_min_k4). */
function unpackScaleMin(bytes: Uint8Array, at: number, j: number, out: KBlockInts): void {
  if (j < 4) {
    out.scales[j] = bytes[at + j]! & 63;
    out.mins[j] = bytes[at + j + 4]! & 63;
  } else {
    out.scales[j] = (bytes[at + j + 4]! & 0x0f) | ((bytes[at + j - 4]! >> 6) << 4);
    out.mins[j] = (bytes[at + j + 4]! >> 4) | ((bytes[at + j]! >> 6) << 4);
  }
}

/** Decodes the super-block at byte `at` into `out`. */
export function decodeKBlock(dtype: KQuantDtype, bytes: Uint8Array, at: number, out: KBlockInts): void {
  const half = f16LookupTable();
  const { q } = out;
  if (dtype === "q6_k") {
    out.d = half[bytes[at + Q6_K.dOffset]! | (bytes[at + Q6_K.dOffset + 1]! << 8)]!;
    out.dmin = 0;
    for (let k = 0; k < 16; k++) out.scales[k] = (bytes[at + Q6_K.scalesOffset + k]! << 24) >> 24;
    // Value 128n + 32k + l: low nibble or high nibble of ql[64n + 32(k & 1) + l], bits 2k..2k+1 of qh[32n + l].
    for (let n = 0; n < 2; n++) {
      for (let k = 0; k < 4; k++) {
        const ql = at + Q6_K.lowOffset + 64 * n + 32 * (k & 1);
        const qh = at + Q6_K.highOffset + 32 * n;
        for (let l = 0; l < 32; l++) {
          const low = k < 2 ? bytes[ql + l]! & 0x0f : bytes[ql + l]! >> 4;
          q[128 * n + 32 * k + l] = low | (((bytes[qh + l]! >> (2 * k)) & 3) << 4);
        }
      }
    }
    return;
  }
  const layout = LAYOUT[dtype];
  out.d = half[bytes[at + layout.dOffset]! | (bytes[at + layout.dOffset + 1]! << 8)]!;
  out.dmin = half[bytes[at + layout.dminOffset]! | (bytes[at + layout.dminOffset + 1]! << 8)]!;
  for (let j = 0; j < 8; j++) unpackScaleMin(bytes, at + layout.scalesOffset, j, out);
  // Sub-block j: low (j even) or high (j odd) nibbles of bytes 32(j >> 1)..+31, plus Q5_K's bit j of qh[l].
  const qs = at + layout.quantsOffset;
  for (let j = 0; j < 8; j++) {
    const from = qs + 32 * (j >> 1);
    for (let l = 0; l < 32; l++) {
      const nibble = j & 1 ? bytes[from + l]! >> 4 : bytes[from + l]! & 0x0f;
      const high = dtype === "q5_k" ? ((bytes[at + Q5_K.highBitsOffset + l]! >> j) & 1) << 4 : 0;
      q[32 * j + l] = nibble | high;
    }
  }
}

/**
 * Widens `out.length` values (a multiple of 256) of K-quant blocks starting at byte `at`, in f32
 * steps as llama.cpp's dequantize_row_q*_K: (d·scale)·q − dmin·min.
 */
export function dequantizeKQuant(dtype: KQuantDtype, bytes: Uint8Array, at: number, out: Float32Array): void {
  const block = kBlockInts();
  const blockBytes = LAYOUT[dtype].blockBytes;
  const f = Math.fround;
  for (let b = 0; b < out.length / QK_K; b++) {
    decodeKBlock(dtype, bytes, at + b * blockBytes, block);
    const o = b * QK_K;
    if (dtype === "q6_k") {
      for (let k = 0; k < 16; k++) {
        const d = f(block.d * block.scales[k]!);
        for (let l = 0; l < 16; l++) out[o + 16 * k + l] = d * (block.q[16 * k + l]! - 32);
      }
      continue;
    }
    for (let j = 0; j < 8; j++) {
      const d = f(block.d * block.scales[j]!);
      const m = f(block.dmin * block.mins[j]!);
      for (let l = 0; l < 32; l++) out[o + 32 * j + l] = f(d * block.q[32 * j + l]!) - m;
    }
  }
}

/** Row r of a row-major [rows, cols] K-quant matrix as f32 values in `out` (length cols). */
export function dequantizeKQuantRow(dtype: KQuantDtype, data: Uint8Array, r: number, cols: number, out: Float32Array): void {
  dequantizeKQuant(dtype, data, r * kQuantRowBytes(dtype, cols), out.subarray(0, cols));
}
