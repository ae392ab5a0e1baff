// Matmuls and embedding rows of K-quant weights (Q4_K, Q5_K, Q6_K super-blocks of 256 values, as
// GGUF files store them), against activations quantized per 256 values by quantizeActivationsK
// (llama.cpp's Q8_K). Computes the integer sums src/backend/js/matmul-kquant.ts computes: per
// super-block Σ scale·Σ q·x over its sub-blocks in i32, the mins (Q4_K, Q5_K) or the −32 offset
// (Q6_K) from the activations' 16-value sums, then one f32 step per super-block. The quants are
// unsigned (0..63), so they are relaxed SIMD's 7-bit operand as they are. Matrices sit in groups
// of four rows (packKRows4), their quant bytes interleaved by 4 bytes across the four rows, so one
// stream feeds four rows and one dot gives the four rows' sums in their own lanes.
import {
  ACTIVATION_K_BLOCK_BYTES,
  ACTIVATION_K_QUANTS_OFFSET,
  ACTIVATION_K_SUMS_OFFSET,
  Q4_K_BLOCK_BYTES,
  Q4_K_QUANTS_OFFSET,
  Q5_K_BLOCK_BYTES,
  Q5_K_HIGH_BITS_OFFSET,
  Q5_K_QUANTS_OFFSET,
  Q6_K_BLOCK_BYTES,
  Q6_K_D_OFFSET,
  Q6_K_HIGH_OFFSET,
  Q6_K_SCALES_OFFSET,
  QK_K,
} from "./block-layout";
import { absMax, int8Lanes, laneSum, quants } from "./quantize-activations";
import {
  f16ToF32,
  gatherLanes,
  halvesToF32,
  MASK_0F,
  MASK_10,
  MASK_30,
  MASK_3F,
  ONES_I16,
  PAIR_DOTS,
  pairForm,
  pairsToRows,
  rowSums,
  storeRows,
  storeTransposed,
} from "./simd";

// kind: 4 = Q4_K, 5 = Q5_K, 6 = Q6_K; every use is inlined with a constant kind, so each kernel
// compiles to its own straight code.
@inline function kBlockBytes(kind: i32): usize {
  return kind == 4 ? <usize>Q4_K_BLOCK_BYTES : kind == 5 ? <usize>Q5_K_BLOCK_BYTES : <usize>Q6_K_BLOCK_BYTES;
}

// A Q4_K/Q5_K block's eight 6-bit scales and eight 6-bit mins as bytes [scale0..7, min0..7]
// (get_scale_min_k4 for all sub-blocks at once): j < 4 take the low 6 bits of bytes j and j + 4;
// j ≥ 4 a nibble of byte j + 4 and the top two bits of bytes j − 4 and j.
@inline function scalesAndMins(block: usize): v128 {
  const packed = v128.load(block + 4);
  const low = i8x16.swizzle(packed, i8x16(0, 1, 2, 3, 8, 9, 10, 11, 4, 5, 6, 7, 8, 9, 10, 11));
  const top = i8x16.swizzle(packed, i8x16(-1, -1, -1, -1, 0, 1, 2, 3, -1, -1, -1, -1, 4, 5, 6, 7));
  const nibbles = v128.bitselect(i8x16.shr_u(low, 4), low, i8x16(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, -1, -1, -1, -1));
  const bits = v128.and(nibbles, i8x16(63, 63, 63, 63, 15, 15, 15, 15, 63, 63, 63, 63, 15, 15, 15, 15));
  return v128.or(bits, i8x16.shl(i8x16.shr_u(top, 6), 4));
}

// Four rows' f16 at the same offset of their blocks (b0 + i·blockBytes) as f32x4.
@inline function fourHalves(b0: usize, blockBytes: usize, offset: usize): v128 {
  let h = i32x4.splat(<i32>load<u16>(b0 + offset));
  h = i32x4.replace_lane(h, 1, <i32>load<u16>(b0 + blockBytes + offset));
  h = i32x4.replace_lane(h, 2, <i32>load<u16>(b0 + 2 * blockBytes + offset));
  h = i32x4.replace_lane(h, 3, <i32>load<u16>(b0 + 3 * blockBytes + offset));
  return halvesToF32(h);
}

// Byte-wise bit moves through 16-bit lane shifts (one instruction; wasm's i8x16 shifts are two on
// x64): sound wherever the bits kept after the mask cannot cross into the neighbouring byte.

// The low (high = false) or high nibble of each byte (low4: MASK_0F's bytes).
@inline function nibbles(raw: v128, high: bool, low4: v128 = i8x16.splat(0x0f)): v128 {
  return v128.and(high ? i16x8.shr_u(raw, 4) : raw, low4);
}

// Bit `bit` of each byte moved to bit 4 (0 or 16): Q5_K's fifth bit (fifth: MASK_10's bytes).
@inline function bitToFour(bits: v128, bit: i32, fifth: v128 = i8x16.splat(0x10)): v128 {
  if (bit < 4) return v128.and(i16x8.shl(bits, 4 - bit), fifth);
  if (bit > 4) return v128.and(i16x8.shr_u(bits, bit - 4), fifth);
  return v128.and(bits, fifth);
}

// Bits 2k, 2k + 1 of each byte moved to bits 4, 5 (0..48): Q6_K's high bits.
@inline function pairToFour(bits: v128, k: i32): v128 {
  if (k == 3) return v128.and(i16x8.shr_u(bits, 2), i8x16.splat(48));
  const kept = v128.and(bits, i8x16.splat(<i8>(<i32>3 << (2 * k))));
  return k == 2 ? kept : i16x8.shl(kept, 4 - 2 * k);
}

// Q4_K/Q5_K's quant bytes (and Q5_K's fifth bits) sit interleaved across a group's four blocks as
// Q6_K's do (interleaveK): the vector at offset o of row m's block holds the four rows' bytes
// 4m..4m + 3 of that 16-byte chunk, so a dot with the token's 4 activation bytes repeated gives the
// four rows' sums in their own lanes. Byte l of quant chunk 32i + 16c holds value 16c + l of
// sub-block 2i (low nibble) and 2i + 1 (high nibble); Q5_K's fifth bit of value l of sub-block j is
// bit j of fifth-bit byte l.

// Row m's 16 bytes at offset o of an interleaved group's blocks (b0: row 0's block).
@inline function rowChunk(b0: usize, m: usize, o: usize, blockBytes: usize): v128 {
  return gatherLanes(b0 + o + (m << 2), blockBytes);
}

// Row m's 16 quants of Q4_K/Q5_K sub-block j, values 16c.. (c: 0 or 1), from an interleaved group.
@inline function quants45(kind: i32, b0: usize, m: usize, j: i32, c: usize): v128 {
  const size = kBlockBytes(kind);
  const offset = kind == 4 ? <usize>Q4_K_QUANTS_OFFSET : <usize>Q5_K_QUANTS_OFFSET;
  const q = nibbles(rowChunk(b0, m, offset + (<usize>(j >> 1) << 5) + (c << 4), size), (j & 1) != 0);
  if (kind == 5) return v128.or(q, bitToFour(rowChunk(b0, m, <usize>Q5_K_HIGH_BITS_OFFSET + (c << 4), size), j));
  return q;
}

// Q6_K's quants as packKRows4 leaves them: per 64 values 128n + 16h + 32k + l (k = 0..3, l < 16) of
// a row, three 16-byte chunks (a row's bytes interleaved with the group's other rows, interleaveK)
// recoded on load (recode6) so that they unpack in 11 operations instead of 17:
//   A (ql bytes 64n + 16h..): w0 | (w1's top two bits) << 6
//   B (ql bytes 64n + 32 + 16h..): w2 | (w3's top two bits) << 6
//   C (qh bytes 32n + 16h..): (w1 & 15) | (w3 & 15) << 4
// Quant k (0..63) of those values from the three chunks.
// (The masks: MASK_3F's, MASK_30's and MASK_0F's bytes.)
@inline function quant6(
  a: v128,
  b: v128,
  c: v128,
  k: i32,
  low6: v128 = i8x16.splat(0x3f),
  tops: v128 = i8x16.splat(0x30),
  low4: v128 = i8x16.splat(0x0f),
): v128 {
  if (k == 0) return v128.and(a, low6);
  if (k == 2) return v128.and(b, low6);
  const top = v128.and(i16x8.shr_u(k == 1 ? a : b, 2), tops);
  return v128.or(nibbles(c, k == 3, low4), top);
}

// Row m's 16 quants (0..63) of Q6_K's values 32b + half.. (half: 0 or 16), b = 4n + k.
@inline function quants6(b0: usize, m: usize, b: i32, half: usize): v128 {
  const n = <usize>(b >> 2);
  const a = rowChunk(b0, m, (n << 6) + half, <usize>Q6_K_BLOCK_BYTES);
  const bb = rowChunk(b0, m, (n << 6) + 32 + half, <usize>Q6_K_BLOCK_BYTES);
  const c = rowChunk(b0, m, <usize>Q6_K_HIGH_OFFSET + (n << 5) + half, <usize>Q6_K_BLOCK_BYTES);
  return quant6(a, bb, c, b & 3);
}

// Lane r of the result: byte 4r + j of v, zero-extended (signed = false) or sign-extended, as i32
// (v holds four rows' bytes of four sub-blocks, row after row: column). Shifts rather than a
// swizzle, whose 16-byte index vector V8 would rebuild at every use.
@inline function laneBytes(v: v128, j: i32, signed: bool): v128 {
  if (signed) return i32x4.shr_s(j == 3 ? v : i32x4.shl(v, 24 - 8 * j), 24);
  return i32x4.shr_u(j == 3 ? v : i32x4.shl(v, 24 - 8 * j), 24);
}

// [a.l, b.l, a.l, b.l] for a constant lane l.
@inline function pairLanes(a: v128, b: v128, l: i32): v128 {
  if (l == 0) return v128.shuffle<i32>(a, b, 0, 4, 0, 4);
  if (l == 1) return v128.shuffle<i32>(a, b, 1, 5, 1, 5);
  if (l == 2) return v128.shuffle<i32>(a, b, 2, 6, 2, 6);
  return v128.shuffle<i32>(a, b, 3, 7, 3, 7);
}

// 32-bit lane l of each of four rows' vectors, as one vector [a.l, b.l, c.l, d.l].
@inline function column(a: v128, b: v128, c: v128, d: v128, l: i32): v128 {
  return v128.shuffle<i32>(pairLanes(a, b, l), pairLanes(c, d, l), 0, 1, 4, 5);
}

// The second token's running integer sum and super-block result when two tokens share the
// weights' loads (globals are per instance: every worker thread has its own).
let isumT: v128 = i32x4.splat(0);
let partT: v128 = f32x4.splat(0);

// Sub-block j's quants (even j: low nibbles; odd: high) of 16 values of four rows from the
// interleaved quant vector raw, with Q5_K's fifth bits (bits: the matching fifth-bit vector).
@inline function quantsOf45(kind: i32, j: i32, raw: v128, bits: v128, low4: v128, fifth: v128): v128 {
  const q = nibbles(raw, (j & 1) != 0, low4);
  return kind == 5 ? v128.or(q, bitToFour(bits, j, fifth)) : q;
}

// Σ scale·Σ q·x of Q4_K/Q5_K sub-blocks j and j + 1 (j even) for four rows, added to isum (and
// with two, the same for the token at yb, added to isumT): each interleaved quant vector gives both
// sub-blocks' values (its nibbles), dotted with the token's 4 activation bytes at their positions;
// separate chains per 16 values keep the dots' latency off the critical path. scales holds the
// rows' scales of sub-blocks j & ~3..(j | 3) (lane 4r + (j & 3)).
@inline function subBlockPair45<D>(
  kind: i32,
  j: i32,
  b0: usize,
  xb: usize,
  yb: usize,
  two: bool,
  scales: v128,
  low4: v128,
  fifth: v128,
  ones: v128,
  isum: v128,
): v128 {
  const size = kBlockBytes(kind);
  const quants = b0 + (kind == 4 ? <usize>Q4_K_QUANTS_OFFSET : <usize>Q5_K_QUANTS_OFFSET) + (<usize>(j >> 1) << 5);
  const at = <usize>ACTIVATION_K_QUANTS_OFFSET + (<usize>j << 5);
  let e0 = i32x4.splat(0), e1 = e0, o0 = e0, o1 = e0;
  let f0 = e0, f1 = e0, p0 = e0, p1 = e0;
  for (let m: usize = 0; m < 4; m++) {
    const raw0 = v128.load(quants + m * size);
    const raw1 = v128.load(quants + m * size, 16);
    let bits0 = raw0, bits1 = raw1;
    if (kind == 5) {
      bits0 = v128.load(b0 + m * size + <usize>Q5_K_HIGH_BITS_OFFSET);
      bits1 = v128.load(b0 + m * size + <usize>Q5_K_HIGH_BITS_OFFSET, 16);
    }
    const low0 = quantsOf45(kind, j, raw0, bits0, low4, fifth), high0 = quantsOf45(kind, j + 1, raw0, bits0, low4, fifth);
    const low1 = quantsOf45(kind, j, raw1, bits1, low4, fifth), high1 = quantsOf45(kind, j + 1, raw1, bits1, low4, fifth);
    const xm = xb + at + (m << 2);
    // Pair form: four steps of 16-bit pair sums per chain (at most 31496 for Q5_K), widened after the loop.
    e0 = rowsStep<D>(v128.load32_splat(xm), low0, e0);
    o0 = rowsStep<D>(v128.load32_splat(xm + 32), high0, o0);
    e1 = rowsStep<D>(v128.load32_splat(xm + 16), low1, e1);
    o1 = rowsStep<D>(v128.load32_splat(xm + 48), high1, o1);
    if (two) {
      const ym = yb + at + (m << 2);
      f0 = rowsStep<D>(v128.load32_splat(ym), low0, f0);
      p0 = rowsStep<D>(v128.load32_splat(ym + 32), high0, p0);
      f1 = rowsStep<D>(v128.load32_splat(ym + 16), low1, f1);
      p1 = rowsStep<D>(v128.load32_splat(ym + 48), high1, p1);
    }
  }
  if (pairForm<D>()) {
    e0 = widen16(e0, ones);
    e1 = widen16(e1, ones);
    o0 = widen16(o0, ones);
    o1 = widen16(o1, ones);
    if (two) {
      f0 = widen16(f0, ones);
      f1 = widen16(f1, ones);
      p0 = widen16(p0, ones);
      p1 = widen16(p1, ones);
    }
  }
  const even = laneBytes(scales, j & 3, false);
  const odd = laneBytes(scales, (j & 3) + 1, false);
  if (two) isumT = i32x4.add(isumT, i32x4.add(i32x4.mul(i32x4.add(f0, f1), even), i32x4.mul(i32x4.add(p0, p1), odd)));
  return i32x4.add(isum, i32x4.add(i32x4.mul(i32x4.add(e0, e1), even), i32x4.mul(i32x4.add(o0, o1), odd)));
}

// Σ_j min_j · Σx over sub-block j for four rows (mins as in superBlock45) against the K activation
// block at xb: its 16-value sums added in pairs, dotted as i16 with each row's mins (rows 0, 1 in
// the low halves of mLow / mHigh, rows 2, 3 in the high).
@inline function minSums(mLow: v128, mHigh: v128, xb: usize): v128 {
  const sumsA = v128.load(xb + <usize>ACTIVATION_K_SUMS_OFFSET);
  const sumsB = v128.load(xb + <usize>ACTIVATION_K_SUMS_OFFSET, 16);
  const even = v128.shuffle<i16>(sumsA, sumsB, 0, 2, 4, 6, 8, 10, 12, 14);
  const pairs = i16x8.add(even, v128.shuffle<i16>(sumsA, sumsB, 1, 3, 5, 7, 9, 11, 13, 15));
  const pairsLow = v128.shuffle<i16>(pairs, pairs, 0, 1, 2, 3, 0, 1, 2, 3);
  const pairsHigh = v128.shuffle<i16>(pairs, pairs, 4, 5, 6, 7, 4, 5, 6, 7);
  const low01 = i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_u(mLow), pairsLow);
  const low23 = i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_u(mLow), pairsLow);
  const rows01 = i32x4.add(low01, i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_u(mHigh), pairsHigh));
  const rows23 = i32x4.add(low23, i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_u(mHigh), pairsHigh));
  return pairsToRows(rows01, rows23);
}

// One Q4_K/Q5_K super-block of four rows (blocks b0..b3) against one token's K activation block
// xb: d_x · (d · Σ scale·Σqx − dmin · Σ min·Σx) per row, as f32x4; with two, also against yb,
// that result left in partT.
@inline function superBlock45<D>(
  kind: i32,
  b0: usize,
  b1: usize,
  b2: usize,
  b3: usize,
  xb: usize,
  yb: usize,
  two: bool,
  low4: v128,
  fifth: v128,
  ones: v128,
): v128 {
  // The four rows' 12 packed bytes as three columns (lane 4r + j: byte j, 4 + j or 8 + j of row r),
  // decoded at once (get_scale_min_k4): lane 4r + j of scLow / mLow is row r's scale / min j,
  // of scHigh / mHigh its scale / min 4 + j.
  const p0 = v128.load(b0 + 4), p1 = v128.load(b1 + 4), p2 = v128.load(b2 + 4), p3 = v128.load(b3 + 4);
  const ca = column(p0, p1, p2, p3, 0), cb = column(p0, p1, p2, p3, 1), cc = column(p0, p1, p2, p3, 2);
  const six = i8x16.splat(63), four = i8x16.splat(15), tops = i8x16.splat(-64);
  const scLow = v128.and(ca, six);
  const mLow = v128.and(cb, six);
  const scHigh = v128.or(v128.and(cc, four), i16x8.shr_u(v128.and(ca, tops), 2));
  const mHigh = v128.or(v128.and(i16x8.shr_u(cc, 4), four), i16x8.shr_u(v128.and(cb, tops), 2));
  let isum = i32x4.splat(0);
  if (two) isumT = i32x4.splat(0);
  isum = subBlockPair45<D>(kind, 0, b0, xb, yb, two, scLow, low4, fifth, ones, isum);
  isum = subBlockPair45<D>(kind, 2, b0, xb, yb, two, scLow, low4, fifth, ones, isum);
  isum = subBlockPair45<D>(kind, 4, b0, xb, yb, two, scHigh, low4, fifth, ones, isum);
  isum = subBlockPair45<D>(kind, 6, b0, xb, yb, two, scHigh, low4, fifth, ones, isum);
  const msum = minSums(mLow, mHigh, xb);
  // Each row's f16 d and dmin in one 32-bit load.
  let dd = i32x4.splat(load<i32>(b0));
  dd = i32x4.replace_lane(dd, 1, load<i32>(b1));
  dd = i32x4.replace_lane(dd, 2, load<i32>(b2));
  dd = i32x4.replace_lane(dd, 3, load<i32>(b3));
  const d = halvesToF32(v128.and(dd, i32x4.splat(0xffff)));
  const dmin = halvesToF32(i32x4.shr_u(dd, 16));
  if (two) {
    const dy = f32x4.splat(load<f32>(yb));
    const msumT = minSums(mLow, mHigh, yb);
    const mins = f32x4.mul(f32x4.convert_i32x4_s(msumT), f32x4.mul(dmin, dy));
    partT = f32x4.sub(f32x4.mul(f32x4.convert_i32x4_s(isumT), f32x4.mul(d, dy)), mins);
  }
  const dx = f32x4.splat(load<f32>(xb));
  return f32x4.sub(f32x4.mul(f32x4.convert_i32x4_s(isum), f32x4.mul(d, dx)), f32x4.mul(f32x4.convert_i32x4_s(msum), f32x4.mul(dmin, dx)));
}

// Σ q·x over four values of each of the four rows, in their own lanes: w holds the rows' 4 bytes
// side by side (the interleaved Q6_K layout), x the token's 4 activation bytes repeated. Plain
// SIMD widens to i16, where a dot's lanes are (row, half of its 4 bytes), paired up after.
// rowsDot in the pair-sum form (D = i16, simd.ts): the 16-bit lanes (row, half of its 4 bytes)
// added to acc16; widen16 turns them into the rows' i32 lanes. A pair is at most 2 · 127 · q_max
// in magnitude: Q4_K 3810, Q5_K 7874, so four dots fit in 16 bits (Q6_K's 16002: two would).
@inline function rowsDot16(x: v128, w: v128, acc16: v128): v128 {
  return i16x8.add(acc16, i16x8.relaxed_dot_i8x16_i7x16_s(x, w));
}

@inline function widen16(acc16: v128, ones: v128): v128 {
  return i32x4.dot_i16x8_s(acc16, ones);
}

// One step of a chain: rowsDot16 in the pair form (D = i16), else rowsDot.
@inline function rowsStep<D>(x: v128, w: v128, acc: v128): v128 {
  return pairForm<D>() ? rowsDot16(x, w, acc) : rowsDot(x, w, acc);
}

@inline function rowsDot(x: v128, w: v128, acc: v128): v128 {
  if (RELAXED) return i32x4.relaxed_dot_i8x16_i7x16_add_s(x, w, acc);
  const wx = i16x8.extend_low_i8x16_s(x);
  const rows01 = i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_u(w), wx);
  const rows23 = i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_u(w), wx);
  return i32x4.add(acc, pairsToRows(rows01, rows23));
}

// Σ_k scale·Σ q·x of Q6_K's sub-blocks 8n + 2k + h (k = 0..3) for four rows, added to isum. With
// the quant bytes interleaved (interleaveK), the vectors at offset o of rows m = 0..3's blocks hold
// the four rows' bytes 4m.. of chunk o, and the chunks A, B, C of values 128n + 16h + 32k + 4m..
// give their quants (quant6). scales: the rows' int8 scales as column() lays them out.
@inline function quarter6(
  n: i32,
  h: i32,
  b0: usize,
  xb: usize,
  yb: usize,
  two: bool,
  t0: v128,
  t1: v128,
  t2: v128,
  t3: v128,
  low6: v128,
  tops: v128,
  low4: v128,
  isum: v128,
): v128 {
  const size = <usize>Q6_K_BLOCK_BYTES;
  const low = <usize>(64 * n + 16 * h);
  const high = <usize>Q6_K_HIGH_OFFSET + <usize>(32 * n + 16 * h);
  const at = <usize>ACTIVATION_K_QUANTS_OFFSET + <usize>(128 * n + 16 * h);
  let a0 = i32x4.splat(0), a1 = a0, a2 = a0, a3 = a0;
  let e0 = a0, e1 = a0, e2 = a0, e3 = a0;
  for (let m: usize = 0; m < 4; m++) {
    const block = b0 + m * size;
    const a = v128.load(block + low);
    const b = v128.load(block + low + 32);
    const c = v128.load(block + high);
    const w0 = quant6(a, b, c, 0, low6, tops, low4);
    const w1 = quant6(a, b, c, 1, low6, tops, low4);
    const w2 = quant6(a, b, c, 2, low6, tops, low4);
    const w3 = quant6(a, b, c, 3, low6, tops, low4);
    const xm = xb + at + (m << 2);
    a0 = rowsDot(v128.load32_splat(xm), w0, a0);
    a1 = rowsDot(v128.load32_splat(xm + 32), w1, a1);
    a2 = rowsDot(v128.load32_splat(xm + 64), w2, a2);
    a3 = rowsDot(v128.load32_splat(xm + 96), w3, a3);
    if (two) {
      const ym = yb + at + (m << 2);
      e0 = rowsDot(v128.load32_splat(ym), w0, e0);
      e1 = rowsDot(v128.load32_splat(ym + 32), w1, e1);
      e2 = rowsDot(v128.load32_splat(ym + 64), w2, e2);
      e3 = rowsDot(v128.load32_splat(ym + 96), w3, e3);
    }
  }
  // Sub-block j = 8n + 2k + h: its scales are bytes j & 3 of column j >> 2.
  const s0 = laneBytes(n == 0 ? t0 : t2, h, true);
  const s1 = laneBytes(n == 0 ? t0 : t2, 2 + h, true);
  const s2 = laneBytes(n == 0 ? t1 : t3, h, true);
  const s3 = laneBytes(n == 0 ? t1 : t3, 2 + h, true);
  if (two) {
    const first = i32x4.add(i32x4.mul(e0, s0), i32x4.mul(e1, s1));
    isumT = i32x4.add(isumT, i32x4.add(first, i32x4.add(i32x4.mul(e2, s2), i32x4.mul(e3, s3))));
  }
  const sum = i32x4.add(i32x4.mul(a0, s0), i32x4.mul(a1, s1));
  return i32x4.add(isum, i32x4.add(sum, i32x4.add(i32x4.mul(a2, s2), i32x4.mul(a3, s3))));
}

// 32 · Σ_k scale_k · Σx over sub-block k for four rows (c0..c3: their 16 int8 scales) against the
// K activation block at xb, dotted as i16: the −32 offset of every Q6_K quant.
@inline function offsetSums6(c0: v128, c1: v128, c2: v128, c3: v128, xb: usize): v128 {
  const sumsA = v128.load(xb + <usize>ACTIVATION_K_SUMS_OFFSET);
  const sumsB = v128.load(xb + <usize>ACTIVATION_K_SUMS_OFFSET, 16);
  const offset = rowSums(
    i32x4.add(i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(c0), sumsA), i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(c0), sumsB)),
    i32x4.add(i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(c1), sumsA), i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(c1), sumsB)),
    i32x4.add(i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(c2), sumsA), i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(c2), sumsB)),
    i32x4.add(i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(c3), sumsA), i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(c3), sumsB)),
  );
  return i32x4.shl(offset, 5);
}

// One Q6_K super-block of four rows (b0, b0 + Q6_K_BLOCK_BYTES, ...) against one token:
// d_x · d · (Σ scale·Σqx − 32 Σ scale·Σx), as f32x4; with two, also against yb (which shares the
// unpacked quants), that result left in partT.
@inline function superBlock6(b0: usize, xb: usize, yb: usize, two: bool, low6: v128, tops: v128, low4: v128): v128 {
  const size = <usize>Q6_K_BLOCK_BYTES;
  const c0 = v128.load(b0 + <usize>Q6_K_SCALES_OFFSET);
  const c1 = v128.load(b0 + size + <usize>Q6_K_SCALES_OFFSET);
  const c2 = v128.load(b0 + 2 * size + <usize>Q6_K_SCALES_OFFSET);
  const c3 = v128.load(b0 + 3 * size + <usize>Q6_K_SCALES_OFFSET);
  // Lane 4r + (k & 3) of t(k >> 2) is row r's scale k.
  const t0 = column(c0, c1, c2, c3, 0);
  const t1 = column(c0, c1, c2, c3, 1);
  const t2 = column(c0, c1, c2, c3, 2);
  const t3 = column(c0, c1, c2, c3, 3);
  let isum = i32x4.splat(0);
  if (two) isumT = i32x4.splat(0);
  isum = quarter6(0, 0, b0, xb, yb, two, t0, t1, t2, t3, low6, tops, low4, isum);
  isum = quarter6(0, 1, b0, xb, yb, two, t0, t1, t2, t3, low6, tops, low4, isum);
  isum = quarter6(1, 0, b0, xb, yb, two, t0, t1, t2, t3, low6, tops, low4, isum);
  isum = quarter6(1, 1, b0, xb, yb, two, t0, t1, t2, t3, low6, tops, low4, isum);
  const d = fourHalves(b0, size, <usize>Q6_K_D_OFFSET);
  if (two) {
    const sumT = i32x4.sub(isumT, offsetSums6(c0, c1, c2, c3, yb));
    partT = f32x4.mul(f32x4.convert_i32x4_s(sumT), f32x4.mul(d, f32x4.splat(load<f32>(yb))));
  }
  isum = i32x4.sub(isum, offsetSums6(c0, c1, c2, c3, xb));
  return f32x4.mul(f32x4.convert_i32x4_s(isum), f32x4.mul(d, f32x4.splat(load<f32>(xb))));
}

// Bytes from..to (multiples of 16 from the block's start) of four rows' super-blocks at b0,
// b0 + size, ... interleaved by 4 bytes, in place: each 16-byte chunk of the four rows is
// transposed as four 32-bit lanes, vector m (the rows' bytes 4m..4m + 3 of that chunk) going to
// row m's chunk. Q6_K: its ql and qh; Q4_K, Q5_K: their fifth bits and nibbles.
@inline function interleaveK(b0: usize, size: usize, from: usize, to: usize): void {
  for (let o = from; o < to; o += 16) {
    storeTransposed(b0 + o, size, v128.load(b0 + o), v128.load(b0 + size + o), v128.load(b0 + 2 * size + o), v128.load(b0 + 3 * size + o));
  }
}

// Q6_K's ql/qh chunks of one block (as GGUF stores them, possibly interleaved) rewritten as the
// A, B, C chunks quant6 reads: per 64 values, the quants as ql (low nibbles) and qh (bits 2k, 2k+1)
// hold them, w_k = ql chunk (64n + 16h + 32(k & 1)) nibble (k >= 2) | qh chunk (32n + 16h) pair k.
@inline function recode6(block: usize): void {
  for (let n: usize = 0; n < 2; n++) {
    for (let h: usize = 0; h < 2; h++) {
      const low = block + (n << 6) + (h << 4);
      const high = block + <usize>Q6_K_HIGH_OFFSET + (n << 5) + (h << 4);
      const even = v128.load(low);
      const odd = v128.load(low + 32);
      const bits = v128.load(high);
      const w0 = v128.or(nibbles(even, false), pairToFour(bits, 0));
      const w1 = v128.or(nibbles(odd, false), pairToFour(bits, 1));
      const w2 = v128.or(nibbles(even, true), pairToFour(bits, 2));
      const w3 = v128.or(nibbles(odd, true), pairToFour(bits, 3));
      const tops = i8x16.splat(0x30);
      v128.store(low, v128.or(w0, i16x8.shl(v128.and(w1, tops), 2)));
      v128.store(low + 32, v128.or(w2, i16x8.shl(v128.and(w3, tops), 2)));
      v128.store(high, v128.or(nibbles(w1, false), i16x8.shl(nibbles(w3, false), 4)));
    }
  }
}

// Activation bytes a chunk of tokens may take so that every row group finds them in cache.
const K_CHUNK_BYTES: usize = 192 * 1024;

// A Q6_K decode step reads one byte this far ahead of the super-block it works on (WebAssembly has
// no prefetch): one thread on a 256k-row output head went from 29.5 to 22 ms (Q4_K and Q5_K: no
// gain). The bytes go to touchedSink, so that no optimizer drops the loads.
const Q6_K_TOUCH_AHEAD: usize = 32768;
let touchedSink: u32 = 0;

// out[s · outStride + r] for packed K-quant weights (packKRows4) against activations quantized by
// quantizeActivationsK; cols is a multiple of 256 and rows start at a multiple of 4. Each group of
// four rows stays in cache while the tokens of a chunk pass over it.
@inline function matmulK<D>(kind: i32, out: usize, xq: usize, w: usize, rows: i32, cols: i32, seqLen: i32, outStride: i32): void {
  const superBlocks = cols / QK_K;
  const blockBytes = kBlockBytes(kind);
  const groupBytes = <usize>superBlocks * 4 * blockBytes;
  const xRowBytes = <usize>superBlocks * <usize>ACTIVATION_K_BLOCK_BYTES;
  const chunk = max(1, min(seqLen, <i32>(K_CHUNK_BYTES / xRowBytes)));
  const low4 = MASK_0F, fifth = MASK_10, low6 = MASK_3F, tops = MASK_30, ones = ONES_I16;
  const last = w + <usize>((rows + 3) >> 2) * groupBytes - 1;
  let touched: u32 = 0;
  for (let s0 = 0; s0 < seqLen; s0 += chunk) {
    const sEnd = min(seqLen, s0 + chunk);
    for (let r = 0; r < rows; r += 4) {
      const group = w + <usize>(r >> 2) * groupBytes;
      let s = s0;
      // Two tokens per pass share every weight load and unpacked quant.
      for (; s + 1 < sEnd; s += 2) {
        const xs = xq + <usize>s * xRowBytes;
        let accS = f32x4.splat(0);
        let accT = f32x4.splat(0);
        for (let sb = 0; sb < superBlocks; sb++) {
          const b0 = group + <usize>sb * 4 * blockBytes;
          const xb = xs + <usize>sb * <usize>ACTIVATION_K_BLOCK_BYTES;
          const b1 = b0 + blockBytes, b2 = b1 + blockBytes, b3 = b2 + blockBytes;
          const yb = xb + xRowBytes;
          const part =
            kind == 6
              ? superBlock6(b0, xb, yb, true, low6, tops, low4)
              : superBlock45<D>(kind, b0, b1, b2, b3, xb, yb, true, low4, fifth, ones);
          accS = f32x4.add(accS, part);
          accT = f32x4.add(accT, partT);
        }
        const os = out + ((<usize>s * <usize>outStride + <usize>r) << 2);
        storeRows(os, accS, rows - r);
        storeRows(os + (<usize>outStride << 2), accT, rows - r);
      }
      for (; s < sEnd; s++) {
        const xs = xq + <usize>s * xRowBytes;
        let acc = f32x4.splat(0);
        for (let sb = 0; sb < superBlocks; sb++) {
          const b0 = group + <usize>sb * 4 * blockBytes;
          if (kind == 6) touched ^= load<u8>(min(b0 + Q6_K_TOUCH_AHEAD, last));
          const xb = xs + <usize>sb * <usize>ACTIVATION_K_BLOCK_BYTES;
          const part =
            kind == 6
              ? superBlock6(b0, xb, xb, false, low6, tops, low4)
              : superBlock45<D>(kind, b0, b0 + blockBytes, b0 + 2 * blockBytes, b0 + 3 * blockBytes, xb, xb, false, low4, fifth, ones);
          acc = f32x4.add(acc, part);
        }
        storeRows(out + ((<usize>s * <usize>outStride + <usize>r) << 2), acc, rows - r);
      }
    }
  }
  touchedSink = touched;
}

// Quantizes seqLen rows of f32 activations into K activation blocks (block-layout.ts): per 256
// values an f32 scale (round half away from zero, in f32, as quantizeActivations) and each 16's sum.
export function quantizeActivationsK(x: usize, out: usize, cols: i32, seqLen: i32): void {
  const blocks = cols / QK_K;
  for (let s = 0; s < seqLen; s++) {
    for (let b = 0; b < blocks; b++) {
      const src = x + ((<usize>s * <usize>cols + <usize>b * <usize>QK_K) << 2);
      const dst = out + (<usize>s * <usize>blocks + <usize>b) * <usize>ACTIVATION_K_BLOCK_BYTES;
      const d: f32 = absMax(src, QK_K) / 127;
      const inverse = f32x4.splat(d == 0 ? 0 : <f32>1 / d);
      store<f32>(dst, d);
      for (let k: usize = 0; k < 16; k++) {
        const v = src + (k << 6);
        const q0 = quants(v, inverse), q1 = quants(v + 16, inverse), q2 = quants(v + 32, inverse), q3 = quants(v + 48, inverse);
        v128.store(dst + <usize>ACTIVATION_K_QUANTS_OFFSET + (k << 4), int8Lanes(q0, q1, q2, q3));
        store<i16>(dst + <usize>ACTIVATION_K_SUMS_OFFSET + (k << 1), <i16>laneSum(i32x4.add(i32x4.add(q0, q1), i32x4.add(q2, q3))));
      }
    }
  }
}

export function matmulQ4_K(out: usize, xq: usize, w: usize, rows: i32, cols: i32, seqLen: i32, outStride: i32): void {
  if (PAIR_DOTS) matmulK<i16>(4, out, xq, w, rows, cols, seqLen, outStride);
  else matmulK<i32>(4, out, xq, w, rows, cols, seqLen, outStride);
}

export function matmulQ5_K(out: usize, xq: usize, w: usize, rows: i32, cols: i32, seqLen: i32, outStride: i32): void {
  if (PAIR_DOTS) matmulK<i16>(5, out, xq, w, rows, cols, seqLen, outStride);
  else matmulK<i32>(5, out, xq, w, rows, cols, seqLen, outStride);
}

export function matmulQ6_K(out: usize, xq: usize, w: usize, rows: i32, cols: i32, seqLen: i32, outStride: i32): void {
  // Q6_K keeps the 32-bit dot: two 6-bit steps fill 16 bits, and the pair form measured no faster.
  matmulK<i32>(6, out, xq, w, rows, cols, seqLen, outStride);
}

// Rearranges a row-major matrix of K-quant super-blocks (blockBytes each) at w, in place, into
// groups of four rows whose blocks of one column sit together (row 0's, 1's, 2's, 3's); the memory
// after it must hold the last group's missing rows (it repeats its last row), `scratch` four rows.
export function packKRows4(w: usize, rows: i32, cols: i32, blockBytes: i32, scratch: usize): void {
  const superBlocks = <usize>(cols / QK_K);
  const size = <usize>blockBytes;
  const rowBytes = superBlocks * size;
  for (let r = 0; r < rows; r += 4) {
    const group = w + <usize>r * rowBytes;
    const have = <usize>min(4, rows - r);
    memory.copy(scratch, group, have * rowBytes);
    for (let i = have; i < 4; i++) memory.copy(scratch + i * rowBytes, scratch + (have - 1) * rowBytes, rowBytes);
    for (let sb: usize = 0; sb < superBlocks; sb++) {
      for (let i: usize = 0; i < 4; i++) memory.copy(group + (sb * 4 + i) * size, scratch + i * rowBytes + sb * size, size);
      const b0 = group + sb * 4 * size;
      if (blockBytes == Q6_K_BLOCK_BYTES) {
        // Recoded per block before interleaving: recode6 works on whole 16-byte chunks, which the
        // interleave only permutes by 4-byte lanes across the group, value positions kept.
        for (let i: usize = 0; i < 4; i++) recode6(b0 + i * size);
        interleaveK(b0, size, 0, <usize>Q6_K_SCALES_OFFSET);
      } else {
        interleaveK(b0, size, <usize>Q4_K_QUANTS_OFFSET, size);
      }
    }
  }
}

// out[c] = scale · row `row` of a packed K-quant matrix (kind 4, 5, 6), in llama.cpp's f32 steps
// ((d·scale)·q − dmin·min, then × scale) as src/weights/k-quants.ts: the embedding lookup.
export function embedKRow(out: usize, w: usize, row: i32, cols: i32, kind: i32, scale: f32): void {
  if (kind == 4) embedKRowOf(4, out, w, row, cols, scale);
  else if (kind == 5) embedKRowOf(5, out, w, row, cols, scale);
  else embedKRowOf(6, out, w, row, cols, scale);
}

@inline function embedKRowOf(kind: i32, out: usize, w: usize, row: i32, cols: i32, scale: f32): void {
  const blockBytes = kBlockBytes(kind);
  const superBlocks = cols / QK_K;
  const group = w + <usize>(row >> 2) * <usize>superBlocks * 4 * blockBytes;
  const by = f32x4.splat(scale);
  for (let sb = 0; sb < superBlocks; sb++) {
    const block = group + (<usize>sb * 4 + <usize>(row & 3)) * blockBytes;
    const dst = out + (<usize>sb << 10);
    if (kind == 6) {
      const d = f16ToF32(<u32>load<u16>(block + <usize>Q6_K_D_OFFSET));
      for (let b = 0; b < 8; b++) {
        for (let h = 0; h < 2; h++) {
          const q = quants6(block - <usize>(row & 3) * blockBytes, <usize>(row & 3), b, <usize>h << 4);
          const ds = f32x4.splat(d * <f32>load<i8>(block + <usize>Q6_K_SCALES_OFFSET + <usize>(2 * b + h)));
          storeScaled16(dst + (<usize>(32 * b + 16 * h) << 2), q, ds, f32x4.splat(0), i16x8.splat(32), by);
        }
      }
      continue;
    }
    const d = f16ToF32(<u32>load<u16>(block));
    const dmin = f16ToF32(<u32>load<u16>(block, 2));
    const sm = scalesAndMins(block);
    const b0 = block - <usize>(row & 3) * blockBytes;
    for (let j = 0; j < 8; j++) {
      const ds = f32x4.splat(d * <f32>scaleByte(sm, j));
      const m = f32x4.splat(dmin * <f32>scaleByte(sm, j + 8));
      storeScaled16(dst + (<usize>(32 * j) << 2), quants45(kind, b0, <usize>(row & 3), j, 0), ds, m, i16x8.splat(0), by);
      storeScaled16(dst + (<usize>(32 * j + 16) << 2), quants45(kind, b0, <usize>(row & 3), j, 1), ds, m, i16x8.splat(0), by);
    }
  }
}

// Byte i of v (a lane index known only at run time).
@inline function scaleByte(v: v128, i: i32): u32 {
  return <u32>i32x4.extract_lane(i8x16.swizzle(v, i8x16.splat(<i8>i)), 0) & 0xff;
}

// 16 quants q (u8) as ((ds · (q − offset)) − m) · by, stored as 16 f32 at dst.
@inline function storeScaled16(dst: usize, q: v128, ds: v128, m: v128, offset: v128, by: v128): void {
  const wide0 = i16x8.sub(i16x8.extend_low_i8x16_u(q), offset);
  const wide1 = i16x8.sub(i16x8.extend_high_i8x16_u(q), offset);
  v128.store(dst, f32x4.mul(f32x4.sub(f32x4.mul(ds, f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(wide0))), m), by));
  v128.store(dst, f32x4.mul(f32x4.sub(f32x4.mul(ds, f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(wide0))), m), by), 16);
  v128.store(dst, f32x4.mul(f32x4.sub(f32x4.mul(ds, f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(wide1))), m), by), 32);
  v128.store(dst, f32x4.mul(f32x4.sub(f32x4.mul(ds, f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(wide1))), m), by), 48);
}
