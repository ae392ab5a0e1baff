// The quantized block layouts for the kernels: the same values as src/weights/block-layout.ts
// (test/weights/block-layout.test.ts reads these exported globals from the compiled module).
// Q8_0: f16 scale, 32 int8. Q4_0: f16 scale, 16 bytes of nibbles. Activations: f32 scale, an i32
// bias −8 · Σ of the 32 int8 (Q4_0's −8 offset, added once to each block sum), the 32 int8; split
// activations: f32 scale, 4 unused bytes, 32 u8 positive parts, 32 u8 negative parts (x = pos − neg).

export const QK: i32 = 32;
export const Q8_0_BLOCK_BYTES: i32 = 34;
export const Q8_0_QUANTS_OFFSET: i32 = 2;
export const Q4_0_BLOCK_BYTES: i32 = 18;
export const Q4_0_QUANTS_OFFSET: i32 = 2;
export const ACTIVATION_BLOCK_BYTES: i32 = 40;
export const ACTIVATION_BIAS_OFFSET: i32 = 4;
export const ACTIVATION_QUANTS_OFFSET: i32 = 8;
export const SPLIT_BLOCK_BYTES: i32 = 72;
export const SPLIT_POS_OFFSET: i32 = 8;
export const SPLIT_NEG_OFFSET: i32 = 40;
// Prompt tiles (prompt-tiles.ts): a thread's scratch holds one Q4_0 row group repacked, this many
// bytes per block column; matmuls over at least PROMPT_TILE_MIN_TOKENS tokens use them (relaxed SIMD).
export const PROMPT_TILE_BLOCK_BYTES: i32 = 144;
export const PROMPT_TILE_MIN_TOKENS: i32 = 4;
// K-quant super-blocks of QK_K values (src/weights/block-layout.ts): Q4_K and Q5_K start with f16 d,
// f16 dmin and 12 bytes of packed 6-bit scales and mins; Q5_K's fifth bits then its nibbles; Q6_K
// holds low nibbles, high bit pairs, 16 int8 scales, then f16 d. K activations: f32 scale, 12 unused
// bytes, 256 int8, 16 i16 sums of 16.
export const QK_K: i32 = 256;
export const Q4_K_BLOCK_BYTES: i32 = 144;
export const Q4_K_QUANTS_OFFSET: i32 = 16;
export const Q5_K_BLOCK_BYTES: i32 = 176;
export const Q5_K_HIGH_BITS_OFFSET: i32 = 16;
export const Q5_K_QUANTS_OFFSET: i32 = 48;
export const Q6_K_BLOCK_BYTES: i32 = 210;
export const Q6_K_HIGH_OFFSET: i32 = 128;
export const Q6_K_SCALES_OFFSET: i32 = 192;
export const Q6_K_D_OFFSET: i32 = 208;
export const ACTIVATION_K_BLOCK_BYTES: i32 = 304;
export const ACTIVATION_K_QUANTS_OFFSET: i32 = 16;
export const ACTIVATION_K_SUMS_OFFSET: i32 = 272;
