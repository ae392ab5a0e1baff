// Q4_0 matmuls over few tokens (decode; and every prompt without relaxed SIMD) on the packed Q4_0
// layout (kernels.ts packRows4): per block column of a group of four rows, the rows' f16 scales,
// then four vectors V_k whose 4-byte lane r holds row r's quant bytes 4k..4k+3. A byte's low
// nibble is value 4k + j, its high nibble value 16 + 4k + j, so and/shift give the four rows'
// values side by side, and one dot with a token's 4 activation bytes repeated (a 32-bit splat
// load) gives the four rows' sums in their own lanes: no cross-lane reduction per block.
// The integer sums and the float steps are those of the tiles (prompt-tiles.ts), so results are
// bit for bit the same for every token count.
import {
  ACTIVATION_BIAS_OFFSET,
  ACTIVATION_BLOCK_BYTES,
  ACTIVATION_QUANTS_OFFSET,
  QK,
} from "./block-layout";
import {
  F16_EXPONENT_SHIFT,
  F16_MAGNITUDE,
  F16_SIGN,
  halvesToF32,
  madd,
  MASK_0F,
  ONES_I16,
  pairForm,
  pairsToRows,
  storeRows,
} from "./simd";

// Bytes of a packed Q4_0 group's block column: 4 f16 scales, 4 × 16 quant bytes.
export const Q4_0_GROUP_BLOCK_BYTES: usize = 8 + 4 * 16;

// Step k of a block for the four rows (V_k = v): their nibbles times the token's activation bytes
// 4k..4k+3 (low nibbles) and 16 + 4k.. (high nibbles), added to acc with relaxed SIMD's dot.
// (low4: MASK_0F's bytes, held in a register by the caller.)
@inline function relaxedStep(v: v128, q: usize, k: usize, acc: v128, low4: v128): v128 {
  const low = i32x4.relaxed_dot_i8x16_i7x16_add_s(v128.load32_splat(q + (k << 2)), v128.and(v, low4), acc);
  return i32x4.relaxed_dot_i8x16_i7x16_add_s(v128.load32_splat(q + 16 + (k << 2)), v128.and(i16x8.shr_u(v, 4), low4), low);
}

// Step k in the pair-sum form (D = i16, simd.ts): 16-bit lanes (row, half of its 4 bytes) added to h.
@inline function pairStep(v: v128, q: usize, k: usize, h: v128, low4: v128): v128 {
  const low = i16x8.relaxed_dot_i8x16_i7x16_s(v128.load32_splat(q + (k << 2)), v128.and(v, low4));
  const high = i16x8.relaxed_dot_i8x16_i7x16_s(v128.load32_splat(q + 16 + (k << 2)), v128.and(i16x8.shr_u(v, 4), low4));
  return i16x8.add(h, i16x8.add(low, high));
}

// A block's 16-bit pair sums widened to the four rows' i32 lanes. A pair is at most 2 · 127 · 15 =
// 3810 in magnitude and a block adds eight of them per lane: 30480, within 16 bits.
@inline function widenPairs(h: v128, ones: v128): v128 {
  return i32x4.dot_i16x8_s(h, ones);
}

// The four rows' exact integer sums of one block against one token (activation block xb), the
// bias −8·Σq_x included.
@inline function blockInts<D>(gb: usize, xb: usize, low4: v128, ones: v128): v128 {
  const q = xb + <usize>ACTIVATION_QUANTS_OFFSET;
  const bias = v128.load32_splat(xb + <usize>ACTIVATION_BIAS_OFFSET);
  const zero = i32x4.splat(0);
  if (pairForm<D>()) {
    // Two chains: steps 0, 2 and 1, 3.
    const a = pairStep(v128.load(gb, 40), q, 2, pairStep(v128.load(gb, 8), q, 0, zero, low4), low4);
    const c = pairStep(v128.load(gb, 56), q, 3, pairStep(v128.load(gb, 24), q, 1, zero, low4), low4);
    return i32x4.add(widenPairs(i16x8.add(a, c), ones), bias);
  }
  if (RELAXED) {
    // Two chains: steps 0, 2 and 1, 3.
    const a = relaxedStep(v128.load(gb, 40), q, 2, relaxedStep(v128.load(gb, 8), q, 0, bias, low4), low4);
    const c = relaxedStep(v128.load(gb, 56), q, 3, relaxedStep(v128.load(gb, 24), q, 1, zero, low4), low4);
    return i32x4.add(a, c);
  }
  // Plain SIMD widens to i16: a dot's lanes are (row, half of its 4 bytes), rows 0-1 in a and
  // rows 2-3 in c, paired up at the end.
  let a = zero, c = zero;
  for (let k: usize = 0; k < 4; k++) {
    const v = v128.load(gb + 8 + (k << 4));
    const low = v128.and(v, low4);
    const high = v128.and(i16x8.shr_u(v, 4), low4);
    const xl = i16x8.extend_low_i8x16_s(v128.load32_splat(q + (k << 2)));
    const xh = i16x8.extend_low_i8x16_s(v128.load32_splat(q + 16 + (k << 2)));
    const rows01 = i32x4.add(i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_u(low), xl), i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_u(high), xh));
    const rows23 = i32x4.add(i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_u(low), xl), i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_u(high), xh));
    a = i32x4.add(a, rows01);
    c = i32x4.add(c, rows23);
  }
  return i32x4.add(pairsToRows(a, c), bias);
}

// acc + ints scaled by d_w · d_x (the prompt tiles use it too: the same float steps).
@inline export function scaled(acc: v128, ints: v128, xb: usize, scales: v128): v128 {
  return madd(f32x4.convert_i32x4_s(ints), f32x4.mul(scales, f32x4.splat(load<f32>(xb))), acc);
}

// Two tokens' sums of one block (relaxed SIMD), sharing the weight loads and unpacked nibbles:
// token xb's returned, token yb's added to pairSecond.
let pairSecond: v128 = i32x4.splat(0);
@inline function blockIntsPair<D>(gb: usize, xb: usize, yb: usize, low4: v128, ones: v128): v128 {
  const p = xb + <usize>ACTIVATION_QUANTS_OFFSET;
  const q = yb + <usize>ACTIVATION_QUANTS_OFFSET;
  if (pairForm<D>()) {
    let a = i16x8.splat(0), c = i16x8.splat(0);
    for (let k: usize = 0; k < 4; k++) {
      const v = v128.load(gb + 8 + (k << 4));
      a = pairStep(v, p, k, a, low4);
      c = pairStep(v, q, k, c, low4);
    }
    pairSecond = i32x4.add(widenPairs(c, ones), v128.load32_splat(yb + <usize>ACTIVATION_BIAS_OFFSET));
    return i32x4.add(widenPairs(a, ones), v128.load32_splat(xb + <usize>ACTIVATION_BIAS_OFFSET));
  }
  let a = v128.load32_splat(xb + <usize>ACTIVATION_BIAS_OFFSET);
  let c = v128.load32_splat(yb + <usize>ACTIVATION_BIAS_OFFSET);
  for (let k: usize = 0; k < 4; k++) {
    const v = v128.load(gb + 8 + (k << 4));
    const low = v128.and(v, low4);
    const high = v128.and(i16x8.shr_u(v, 4), low4);
    a = i32x4.relaxed_dot_i8x16_i7x16_add_s(v128.load32_splat(p + (k << 2)), low, a);
    c = i32x4.relaxed_dot_i8x16_i7x16_add_s(v128.load32_splat(q + (k << 2)), low, c);
    a = i32x4.relaxed_dot_i8x16_i7x16_add_s(v128.load32_splat(p + 16 + (k << 2)), high, a);
    c = i32x4.relaxed_dot_i8x16_i7x16_add_s(v128.load32_splat(q + 16 + (k << 2)), high, c);
  }
  pairSecond = c;
  return a;
}

// matmulBlocks' arguments and result for packed Q4_0 weights: each group of four rows passes over
// the tokens, two at a time with relaxed SIMD (a decode step has one). D: the dot's form (simd.ts).
export function matmulQ4_0Rows<D>(out: usize, xq: usize, w: usize, rows: i32, cols: i32, seqLen: i32, outStride: i32): void {
  const blocks = cols / QK;
  const groupBytes = <usize>blocks * Q4_0_GROUP_BLOCK_BYTES;
  const xRowBytes = <usize>blocks * <usize>ACTIVATION_BLOCK_BYTES;
  const low4 = MASK_0F, ones = ONES_I16;
  // The f16 scales' conversion constants, read once (hot loops keep them in registers).
  const signMask = F16_SIGN, magnitudeMask = F16_MAGNITUDE, exponentShift = F16_EXPONENT_SHIFT;
  for (let r = 0; r < rows; r += 4) {
    const group = w + <usize>(r >> 2) * groupBytes;
    const valid = rows - r;
    let s = 0;
    if (RELAXED) {
      for (; s + 1 < seqLen; s += 2) {
        const xs = xq + <usize>s * xRowBytes;
        let acc = f32x4.splat(0);
        let accT = f32x4.splat(0);
        for (let b = 0; b < blocks; b++) {
          const gb = group + <usize>b * Q4_0_GROUP_BLOCK_BYTES;
          const xb = xs + <usize>b * <usize>ACTIVATION_BLOCK_BYTES;
          const yb = xb + xRowBytes;
          const scales = halvesToF32(v128.load16x4_u(gb), signMask, magnitudeMask, exponentShift);
          acc = scaled(acc, blockIntsPair<D>(gb, xb, yb, low4, ones), xb, scales);
          accT = scaled(accT, pairSecond, yb, scales);
        }
        storeRows(out + ((<usize>s * <usize>outStride + <usize>r) << 2), acc, valid);
        storeRows(out + ((<usize>(s + 1) * <usize>outStride + <usize>r) << 2), accT, valid);
      }
    }
    for (; s < seqLen; s++) {
      const xs = xq + <usize>s * xRowBytes;
      let acc = f32x4.splat(0);
      for (let b = 0; b < blocks; b++) {
        const gb = group + <usize>b * Q4_0_GROUP_BLOCK_BYTES;
        const xb = xs + <usize>b * <usize>ACTIVATION_BLOCK_BYTES;
        acc = scaled(acc, blockInts<D>(gb, xb, low4, ones), xb, halvesToF32(v128.load16x4_u(gb), signMask, magnitudeMask, exponentShift));
      }
      storeRows(out + ((<usize>s * <usize>outStride + <usize>r) << 2), acc, valid);
    }
  }
}
