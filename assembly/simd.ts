// SIMD helpers shared by the kernel files: f16 widening, int8 dot products without relaxed SIMD,
// reductions of four rows' lanes, and stores of a four-row group's results.

@inline export function sum4(v: v128): f32 {
  return f32x4.extract_lane(v, 0) + f32x4.extract_lane(v, 1) + f32x4.extract_lane(v, 2) + f32x4.extract_lane(v, 3);
}

// V8 materializes a v128 constant anew at each use inside a loop (a 64-bit load, a move into a
// vector register and a shuffle: three instructions for one mask), so the hot loops take their
// masks as arguments, read once per call from these globals (never written: they only hide the
// constants from the optimizers), and the masks stay in registers.
export let MASK_0F: v128 = i8x16.splat(0x0f);
export let MASK_10: v128 = i8x16.splat(0x10);
export let MASK_30: v128 = i8x16.splat(0x30);
export let MASK_3F: v128 = i8x16.splat(0x3f);
export let F16_SIGN: v128 = i32x4.splat(0x8000);
export let F16_MAGNITUDE: v128 = i32x4.splat(0x7fff);
export let F16_EXPONENT_SHIFT: v128 = f32x4.splat(5.192296858534828e33);

// Four f16 bit patterns, one in the low half of each i32 lane, as f32x4 (its constants read from
// the globals: one load each instead of three instructions; hot loops may pass them in registers).
@inline export function halvesToF32(
  h: v128,
  signMask: v128 = F16_SIGN,
  magnitudeMask: v128 = F16_MAGNITUDE,
  exponentShift: v128 = F16_EXPONENT_SHIFT,
): v128 {
  const sign = i32x4.shl(v128.and(h, signMask), 16);
  const magnitude = f32x4.mul(i32x4.shl(v128.and(h, magnitudeMask), 13), exponentShift);
  return v128.or(magnitude, sign);
}

// f16 bits → f32 (f16 weights' tails).
@inline export function f16ToF32(h: u32): f32 {
  const sign = (h & 0x8000) << 16;
  const exponent = (h >> 10) & 0x1f;
  const mantissa = h & 0x3ff;
  if (exponent == 0) {
    const magnitude = <f32>mantissa * 5.9604644775390625e-8;
    return sign ? -magnitude : magnitude;
  }
  if (exponent == 31) return reinterpret<f32>(sign | 0x7f800000 | (mantissa << 13));
  return reinterpret<f32>(sign | ((exponent + 112) << 23) | (mantissa << 13));
}

// Σ of 16 int8 products, as four i32 lanes.
@inline export function dot16(a: v128, b: v128): v128 {
  return i32x4.add(
    i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(a), i16x8.extend_low_i8x16_s(b)),
    i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(a), i16x8.extend_high_i8x16_s(b)),
  );
}

// Four rows' lane sums as one vector [Σa, Σb, Σc, Σd].
@inline export function rowSums(a: v128, b: v128, c: v128, d: v128): v128 {
  const ab = i32x4.add(v128.shuffle<i32>(a, b, 0, 1, 4, 5), v128.shuffle<i32>(a, b, 2, 3, 6, 7));
  const cd = i32x4.add(v128.shuffle<i32>(c, d, 0, 1, 4, 5), v128.shuffle<i32>(c, d, 2, 3, 6, 7));
  return i32x4.add(v128.shuffle<i32>(ab, cd, 0, 2, 4, 6), v128.shuffle<i32>(ab, cd, 1, 3, 5, 7));
}

// Stores four rows' results of one token; a last group with fewer rows stores only those.
@inline export function storeRows(o: usize, acc: v128, valid: i32): void {
  if (valid >= 4) {
    v128.store(o, acc);
    return;
  }
  store<f32>(o, f32x4.extract_lane(acc, 0));
  if (valid > 1) store<f32>(o, f32x4.extract_lane(acc, 1), 4);
  if (valid > 2) store<f32>(o, f32x4.extract_lane(acc, 2), 8);
}

// a·b + c: fused where relaxed SIMD allows it (one instruction with FMA), else multiply then add.
@inline export function madd(a: v128, b: v128, c: v128): v128 {
  if (RELAXED) return f32x4.relaxed_madd(a, b, c);
  return f32x4.add(f32x4.mul(a, b), c);
}

// Four vectors of four 32-bit lanes, transposed: out g = [a_g, b_g, c_g, d_g], stored at
// dst + g · stride (Q4_0's packing: stride 16; Q6_K's: one super-block apart).
@inline export function storeTransposed(dst: usize, stride: usize, a: v128, b: v128, c: v128, d: v128): void {
  const ab01 = v128.shuffle<i32>(a, b, 0, 4, 1, 5);
  const ab23 = v128.shuffle<i32>(a, b, 2, 6, 3, 7);
  const cd01 = v128.shuffle<i32>(c, d, 0, 4, 1, 5);
  const cd23 = v128.shuffle<i32>(c, d, 2, 6, 3, 7);
  v128.store(dst, v128.shuffle<i32>(ab01, cd01, 0, 1, 4, 5));
  v128.store(dst + stride, v128.shuffle<i32>(ab01, cd01, 2, 3, 6, 7));
  v128.store(dst + 2 * stride, v128.shuffle<i32>(ab23, cd23, 0, 1, 4, 5));
  v128.store(dst + 3 * stride, v128.shuffle<i32>(ab23, cd23, 2, 3, 6, 7));
}

// The 32-bit words at at, at + stride, at + 2·stride, at + 3·stride as one vector: a row's bytes
// back out of a transposed (interleaved) layout.
@inline export function gatherLanes(at: usize, stride: usize): v128 {
  let v = i32x4.splat(load<i32>(at));
  v = i32x4.replace_lane(v, 1, load<i32>(at + stride));
  v = i32x4.replace_lane(v, 2, load<i32>(at + 2 * stride));
  return i32x4.replace_lane(v, 3, load<i32>(at + 3 * stride));
}

// Lanes (row, half) after an i16 dot over rows side by side: [r0a, r0b, r1a, r1b] and
// [r2a, r2b, r3a, r3b] → [r0, r1, r2, r3].
@inline export function pairsToRows(rows01: v128, rows23: v128): v128 {
  return i32x4.add(v128.shuffle<i32>(rows01, rows23, 0, 2, 4, 6), v128.shuffle<i32>(rows01, rows23, 1, 3, 5, 7));
}

// How relaxed SIMD's int8 dot runs here (set per instance by usePairDots, from
// src/backend/wasm/features.ts): where the 32-bit dot is one VNNI instruction the kernels call it;
// where the engine builds it from a 16-bit pairwise multiply-add (x86 without VNNI: pmaddubsw,
// then pmaddwd by ones and an add, at every call), they take the 16-bit pair sums
// (i16x8.relaxed_dot_i8x16_i7x16_s, one instruction there), add them while they fit in 16 bits
// and widen once (pmaddwd by ONES_I16). The integer sums are the same either way.
export let PAIR_DOTS = false;

export function usePairDots(on: i32): void {
  PAIR_DOTS = on != 0;
}

// i16x8 ones (a global, never written: see the masks above).
export let ONES_I16: v128 = i16x8.splat(1);

// Kernels take D = i16 for the pair-sum form, i32 for the 32-bit dot.
@inline export function pairForm<D>(): bool {
  return RELAXED && sizeof<D>() == 2;
}
