// Quantizing activations in SIMD, with the scalar arithmetic's results: relaxed SIMD's max and
// truncation are single instructions and exact here (no NaN in a finite activation, every value
// within i32); the plain build keeps the NaN-safe forms. Shared by kernels.ts (per 32 values) and
// k-quants.ts (per 256).

// max |x| over n floats at src (n a multiple of 4).
@inline export function absMax(src: usize, n: i32): f32 {
  let amax = f32x4.splat(0);
  for (let i = 0; i < n; i += 4) {
    const a = f32x4.abs(v128.load(src + (<usize>i << 2)));
    amax = RELAXED ? f32x4.relaxed_max(amax, a) : f32x4.max(amax, a);
  }
  return max(max(f32x4.extract_lane(amax, 0), f32x4.extract_lane(amax, 1)), max(f32x4.extract_lane(amax, 2), f32x4.extract_lane(amax, 3)));
}

// x · inverse rounded half away from zero, for four floats at src, as i32: v ± 0.5 truncated,
// the same as sign(v) · floor(|v| + 0.5) in f32.
@inline export function quants(src: usize, inverse: v128): v128 {
  const v = f32x4.mul(v128.load(src), inverse);
  const half = v128.or(v128.and(v, i32x4.splat(0x80000000)), f32x4.splat(0.5));
  const rounded = f32x4.add(v, half);
  return RELAXED ? i32x4.relaxed_trunc_f32x4_s(rounded) : i32x4.trunc_sat_f32x4_s(rounded);
}

// Sixteen i32 lanes in −127..127 as bytes.
@inline export function int8Lanes(a: v128, b: v128, c: v128, d: v128): v128 {
  return i8x16.narrow_i16x8_s(i16x8.narrow_i32x4_s(a, b), i16x8.narrow_i32x4_s(c, d));
}

@inline export function laneSum(v: v128): i32 {
  return i32x4.extract_lane(v, 0) + i32x4.extract_lane(v, 1) + i32x4.extract_lane(v, 2) + i32x4.extract_lane(v, 3);
}
