// The quantized block layouts for the kernels: the same values as src/weights/block-layout.ts
// (test/weights/block-layout.test.ts reads these exported globals from the compiled module).
// Q8_0: f16 scale, 32 int8. Q4_0: f16 scale, 16 bytes of nibbles. Activations: f32 scale, i32 sum
// of the 32 int8, the 32 int8; split activations: f32 scale, 4 unused bytes, 32 u8 positive parts,
// 32 u8 negative parts (x = pos − neg).

export const QK: i32 = 32;
export const Q8_0_BLOCK_BYTES: i32 = 34;
export const Q8_0_QUANTS_OFFSET: i32 = 2;
export const Q4_0_BLOCK_BYTES: i32 = 18;
export const Q4_0_QUANTS_OFFSET: i32 = 2;
export const ACTIVATION_BLOCK_BYTES: i32 = 40;
export const ACTIVATION_SUM_OFFSET: i32 = 4;
export const ACTIVATION_QUANTS_OFFSET: i32 = 8;
export const SPLIT_BLOCK_BYTES: i32 = 72;
export const SPLIT_POS_OFFSET: i32 = 8;
export const SPLIT_NEG_OFFSET: i32 = 40;
