/**
 * The quantized block layouts, defined once (as ggml defines them in ggml-common.h) for the
 * readers, the quantizers and the kernels. `assembly/block-layout.ts` repeats them for the
 * WebAssembly kernels; test/weights/block-layout.test.ts checks that the compiled kernels agree.
 *
 * Q8_0: 32 values as an f16 scale d then 32 int8 q; value = d · q.
 * Q4_0: 32 values as an f16 scale d then 16 bytes of nibbles (low nibbles values 0-15, high
 *       nibbles 16-31); value = (nibble − 8) · d.
 * Activations (the kernels' Q8 input): 32 values as an f32 scale, the i32 sum of the 32 int8
 *       (Q4_0's −8 offset is applied once per block through it), then the 32 int8.
 * Split activations (relaxed SIMD's Q8_0 input): an f32 scale, 4 unused bytes, then the 32 int8 as
 *       32 u8 positive parts and 32 u8 negative parts (x = pos − neg): relaxed SIMD's int8 dot
 *       product is exact only when one operand lies in 0..127.
 */

/** Values per block, for every block type here. */
export const QK = 32;

export const Q8_0 = { blockBytes: 34, scaleOffset: 0, quantsOffset: 2 } as const;
export const Q4_0 = { blockBytes: 18, scaleOffset: 0, quantsOffset: 2 } as const;
export const ACTIVATION_Q8 = { blockBytes: 40, scaleOffset: 0, sumOffset: 4, quantsOffset: 8 } as const;
export const ACTIVATION_SPLIT = { blockBytes: 72, scaleOffset: 0, posOffset: 8, negOffset: 40 } as const;

/** Bytes of one row of `cols` values (a multiple of QK) in a block layout. */
export function blockRowBytes(layout: { blockBytes: number }, cols: number): number {
  return (cols / QK) * layout.blockBytes;
}
