/**
 * The quantized block layouts, defined once (as ggml defines them in ggml-common.h) for the
 * readers, the quantizers and the kernels. `assembly/block-layout.ts` repeats them for the
 * WebAssembly kernels; test/weights/block-layout.test.ts checks that the compiled kernels agree.
 *
 * Q8_0: 32 values as an f16 scale d then 32 int8 q; value = d · q.
 * Q4_0: 32 values as an f16 scale d then 16 bytes of nibbles (low nibbles values 0-15, high
 *       nibbles 16-31); value = (nibble − 8) · d.
 * Activations (the kernels' Q8 input): 32 values as an f32 scale, an i32 bias −8 · Σ of the 32
 *       int8 (Q4_0's −8 offset, added once to each block sum), then the 32 int8.
 * Split activations (relaxed SIMD's Q8_0 input): an f32 scale, 4 unused bytes, then the 32 int8 as
 *       32 u8 positive parts and 32 u8 negative parts (x = pos − neg): relaxed SIMD's int8 dot
 *       product is exact only when one operand lies in 0..127.
 *
 * K-quants (ggml-common.h block_q4_K / block_q5_K / block_q6_K): super-blocks of QK_K = 256 values.
 * Q4_K: f16 d, f16 dmin, 12 bytes packing eight 6-bit scales and eight 6-bit mins, 128 bytes of
 *       nibbles (bytes 32c..32c+31: low nibbles are values 64c..64c+31, high ones the next 32);
 *       value = d·scale_j·q − dmin·min_j for sub-block j of 32 values.
 * Q5_K: as Q4_K with 32 bytes of fifth bits (qh) before the nibbles: bit j of qh[l] is bit 4 of
 *       value 32j + l.
 * Q6_K: 128 bytes of low nibbles, 64 bytes of high bit pairs, 16 int8 scales (one per 16 values),
 *       f16 d last; value = d·scale·(q − 32), q in 0..63.
 * K activations (the K-quant kernels' input, as llama.cpp's Q8_K): 256 values as an f32 scale, 12
 *       unused bytes, the 256 int8, then the i16 sum of each 16 of them (for the mins and Q6_K's −32).
 */

/** Values per block, for every block type here. */
export const QK = 32;

export const Q8_0 = { blockBytes: 34, scaleOffset: 0, quantsOffset: 2 } as const;
export const Q4_0 = { blockBytes: 18, scaleOffset: 0, quantsOffset: 2 } as const;
export const ACTIVATION_Q8 = { blockBytes: 40, scaleOffset: 0, biasOffset: 4, quantsOffset: 8 } as const;
export const ACTIVATION_SPLIT = { blockBytes: 72, scaleOffset: 0, posOffset: 8, negOffset: 40 } as const;
/**
 * The WebAssembly prompt tiles (assembly/prompt-tiles.ts): a Q4_0 matmul over at least `minTokens`
 * tokens repacks one group of four rows at a time into each thread's scratch, this many bytes per
 * block column.
 */
export const PROMPT_TILE = { blockBytes: 144, minTokens: 4 } as const;

/** Values per K-quant super-block. */
export const QK_K = 256;

export const Q4_K = { values: QK_K, blockBytes: 144, dOffset: 0, dminOffset: 2, scalesOffset: 4, quantsOffset: 16 } as const;
export const Q5_K = {
  values: QK_K,
  blockBytes: 176,
  dOffset: 0,
  dminOffset: 2,
  scalesOffset: 4,
  highBitsOffset: 16,
  quantsOffset: 48,
} as const;
export const Q6_K = { values: QK_K, blockBytes: 210, lowOffset: 0, highOffset: 128, scalesOffset: 192, dOffset: 208 } as const;
export const ACTIVATION_K = { values: QK_K, blockBytes: 304, scaleOffset: 0, quantsOffset: 16, sumsOffset: 272 } as const;

/** Bytes of one row of `cols` values in a block layout (blocks of QK values unless the layout says otherwise). */
export function blockRowBytes(layout: { blockBytes: number; values?: number }, cols: number): number {
  return (cols / (layout.values ?? QK)) * layout.blockBytes;
}

/** Every block type a matrix can be held in, by its MatrixDtype name. */
export const BLOCK_LAYOUTS = {
  q8_0: Q8_0,
  q4_0: Q4_0,
  q4_k: Q4_K,
  q5_k: Q5_K,
  q6_k: Q6_K,
} as const;

export type BlockDtype = keyof typeof BLOCK_LAYOUTS;
export type KQuantDtype = "q4_k" | "q5_k" | "q6_k";

export function isBlockDtype(dtype: string): dtype is BlockDtype {
  return dtype in BLOCK_LAYOUTS;
}

export function isKQuant(dtype: string): dtype is KQuantDtype {
  return dtype === "q4_k" || dtype === "q5_k" || dtype === "q6_k";
}

/** Values per block of a block dtype (32, or 256 for K-quants). */
export function blockValues(dtype: BlockDtype): number {
  return isKQuant(dtype) ? QK_K : QK;
}
