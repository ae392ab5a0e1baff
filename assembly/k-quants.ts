// Matmuls and embedding rows of K-quant weights (Q4_K, Q5_K, Q6_K super-blocks of 256 values, as
// GGUF files store them), against activations quantized to int8 blocks of 32 by
// quantizeActivations (the Q4_0 layout: f32 scale, i32 sum, 32 int8). Computes what
// src/backend/js/matmul-kquant.ts computes: per 32 activations, the integer dot with the weights'
// unsigned quants, then Q4_K/Q5_K: d_x·(d·scale·Σqx − dmin·min·Σx); Q6_K: d_x·d·Σ scale·Σ(q − 32)x
// over its two 16-value halves. The quants are unsigned (0..63), so they are relaxed SIMD's 7-bit
// operand as they are. Matrices sit in groups of four rows (packKRows4): one stream feeds four rows.
import {
  ACTIVATION_BLOCK_BYTES,
  ACTIVATION_QUANTS_OFFSET,
  ACTIVATION_SUM_OFFSET,
  Q4_K_BLOCK_BYTES,
  Q4_K_QUANTS_OFFSET,
  Q5_K_BLOCK_BYTES,
  Q5_K_HIGH_BITS_OFFSET,
  Q5_K_QUANTS_OFFSET,
  Q6_K_BLOCK_BYTES,
  Q6_K_D_OFFSET,
  Q6_K_HIGH_OFFSET,
  Q6_K_SCALES_OFFSET,
  QK,
  QK_K,
} from "./block-layout";
import { dot16, f16ToF32, halvesToF32, rowSums, storeRows } from "./simd";

// kind: 4 = Q4_K, 5 = Q5_K, 6 = Q6_K; every use is inlined with a constant kind, so each kernel
// compiles to its own straight code.
@inline function kBlockBytes(kind: i32): usize {
  return kind == 4 ? <usize>Q4_K_BLOCK_BYTES : kind == 5 ? <usize>Q5_K_BLOCK_BYTES : <usize>Q6_K_BLOCK_BYTES;
}

// acc + Σ a·w over 16 lanes as four i32 lanes; a: int8 activations, w: unsigned quants 0..127.
@inline function dotAdd(a: v128, w: v128, acc: v128): v128 {
  if (RELAXED) return i32x4.relaxed_dot_i8x16_i7x16_add_s(a, w, acc);
  return i32x4.add(acc, dot16(a, w));
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

// Lane r of the result: byte 4·k + r of v, as f32 (v holds four sub-blocks × four rows).
@inline function fourBytes(v: v128, k: i32): v128 {
  const pick = i8x16.add(i8x16(0, -128, -128, -128, 1, -128, -128, -128, 2, -128, -128, -128, 3, -128, -128, -128), i8x16.splat(<i8>(4 * k)));
  return f32x4.convert_i32x4_u(i8x16.swizzle(v, pick));
}

// Row i's 32 quants of Q4_K/Q5_K sub-block j as two u8x16 halves (values 0..15 and 16..31).
@inline function quantsLow45(kind: i32, block: usize, j: i32): v128 {
  const qs = block + (kind == 4 ? <usize>Q4_K_QUANTS_OFFSET : <usize>Q5_K_QUANTS_OFFSET) + (<usize>(j >> 1) << 5);
  const raw = v128.load(qs);
  let q = j & 1 ? i8x16.shr_u(raw, 4) : v128.and(raw, i8x16.splat(0x0f));
  if (kind == 5) q = v128.or(q, i8x16.shl(v128.and(i8x16.shr_u(v128.load(block + <usize>Q5_K_HIGH_BITS_OFFSET), j), i8x16.splat(1)), 4));
  return q;
}

@inline function quantsHigh45(kind: i32, block: usize, j: i32): v128 {
  const qs = block + (kind == 4 ? <usize>Q4_K_QUANTS_OFFSET : <usize>Q5_K_QUANTS_OFFSET) + (<usize>(j >> 1) << 5);
  const raw = v128.load(qs, 16);
  let q = j & 1 ? i8x16.shr_u(raw, 4) : v128.and(raw, i8x16.splat(0x0f));
  if (kind == 5) q = v128.or(q, i8x16.shl(v128.and(i8x16.shr_u(v128.load(block + <usize>Q5_K_HIGH_BITS_OFFSET, 16), j), i8x16.splat(1)), 4));
  return q;
}

// Row i's 32 quants (0..63) of Q6_K activation block b (values 32b..32b+31) as two halves: value
// 128n + 32k + l is the low (k < 2) or high nibble of ql[64n + 32(k & 1) + l] with bits 2k, 2k+1
// of qh[32n + l] on top.
@inline function quants6(block: usize, b: i32, half: usize): v128 {
  const n = <usize>(b >> 2);
  const k = b & 3;
  const low = v128.load(block + (n << 6) + (<usize>(k & 1) << 5) + half);
  const high = v128.load(block + <usize>Q6_K_HIGH_OFFSET + (n << 5) + half);
  const nibble = k >= 2 ? i8x16.shr_u(low, 4) : v128.and(low, i8x16.splat(0x0f));
  return v128.or(nibble, i8x16.shl(v128.and(i8x16.shr_u(high, 2 * k), i8x16.splat(3)), 4));
}

// Row i's Q6_K integer sum for one activation block: scale_lo·Σ(q − 32)x + scale_hi·Σ(q − 32)x, as
// four i32 lanes; x32lo/x32hi hold 32·Σx of each half (shared by the four rows).
@inline function sum6(block: usize, b: i32, a0: v128, a1: v128, x32lo: v128, x32hi: v128): v128 {
  const zero = i32x4.splat(0);
  const lo = i32x4.sub(dotAdd(a0, quants6(block, b, 0), zero), x32lo);
  const hi = i32x4.sub(dotAdd(a1, quants6(block, b, 16), zero), x32hi);
  const scales = block + <usize>Q6_K_SCALES_OFFSET + (<usize>b << 1);
  return i32x4.add(i32x4.mul(lo, i32x4.splat(<i32>load<i8>(scales))), i32x4.mul(hi, i32x4.splat(<i32>load<i8>(scales, 1))));
}

// One group of four rows against one token (two = false) or two tokens xs, xt, over every
// super-block; stores the results at os (and ot).
@inline function kTile(kind: i32, two: bool, group: usize, superBlocks: i32, xs: usize, xt: usize, os: usize, ot: usize, valid: i32): void {
  const blockBytes = kBlockBytes(kind);
  const zero = i32x4.splat(0);
  let accS = f32x4.splat(0);
  let accT = f32x4.splat(0);
  for (let sb = 0; sb < superBlocks; sb++) {
    const b0 = group + <usize>sb * 4 * blockBytes;
    const b1 = b0 + blockBytes;
    const b2 = b1 + blockBytes;
    const b3 = b2 + blockBytes;
    if (kind == 6) {
      const d = fourHalves(b0, blockBytes, <usize>Q6_K_D_OFFSET);
      for (let b = 0; b < 8; b++) {
        const xb = xs + <usize>(sb * 8 + b) * <usize>ACTIVATION_BLOCK_BYTES;
        const a0 = v128.load(xb + <usize>ACTIVATION_QUANTS_OFFSET);
        const a1 = v128.load(xb + <usize>ACTIVATION_QUANTS_OFFSET, 16);
        const x32lo = dotAdd(a0, i8x16.splat(32), zero);
        const x32hi = dotAdd(a1, i8x16.splat(32), zero);
        const sums = rowSums(sum6(b0, b, a0, a1, x32lo, x32hi), sum6(b1, b, a0, a1, x32lo, x32hi), sum6(b2, b, a0, a1, x32lo, x32hi), sum6(b3, b, a0, a1, x32lo, x32hi));
        accS = f32x4.add(accS, f32x4.mul(f32x4.convert_i32x4_s(sums), f32x4.mul(d, f32x4.splat(load<f32>(xb)))));
        if (two) {
          const yb = xt + <usize>(sb * 8 + b) * <usize>ACTIVATION_BLOCK_BYTES;
          const c0 = v128.load(yb + <usize>ACTIVATION_QUANTS_OFFSET);
          const c1 = v128.load(yb + <usize>ACTIVATION_QUANTS_OFFSET, 16);
          const y32lo = dotAdd(c0, i8x16.splat(32), zero);
          const y32hi = dotAdd(c1, i8x16.splat(32), zero);
          const tsums = rowSums(sum6(b0, b, c0, c1, y32lo, y32hi), sum6(b1, b, c0, c1, y32lo, y32hi), sum6(b2, b, c0, c1, y32lo, y32hi), sum6(b3, b, c0, c1, y32lo, y32hi));
          accT = f32x4.add(accT, f32x4.mul(f32x4.convert_i32x4_s(tsums), f32x4.mul(d, f32x4.splat(load<f32>(yb)))));
        }
      }
      continue;
    }
    // Q4_K / Q5_K: the four rows' scales and mins transposed so lane r of sub-block j's vector is row r's.
    const d = fourHalves(b0, blockBytes, 0);
    const dmin = fourHalves(b0, blockBytes, 2);
    const s0 = scalesAndMins(b0), s1 = scalesAndMins(b1), s2 = scalesAndMins(b2), s3 = scalesAndMins(b3);
    const sc01 = i8x16.shuffle(s0, s1, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    const sc23 = i8x16.shuffle(s2, s3, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    const m01 = i8x16.shuffle(s0, s1, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    const m23 = i8x16.shuffle(s2, s3, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    const scLow = i8x16.shuffle(sc01, sc23, 0, 1, 16, 17, 2, 3, 18, 19, 4, 5, 20, 21, 6, 7, 22, 23);
    const scHigh = i8x16.shuffle(sc01, sc23, 8, 9, 24, 25, 10, 11, 26, 27, 12, 13, 28, 29, 14, 15, 30, 31);
    const mLow = i8x16.shuffle(m01, m23, 0, 1, 16, 17, 2, 3, 18, 19, 4, 5, 20, 21, 6, 7, 22, 23);
    const mHigh = i8x16.shuffle(m01, m23, 8, 9, 24, 25, 10, 11, 26, 27, 12, 13, 28, 29, 14, 15, 30, 31);
    for (let j = 0; j < 8; j++) {
      const scale = f32x4.mul(d, fourBytes(j < 4 ? scLow : scHigh, j & 3));
      const min = f32x4.mul(dmin, fourBytes(j < 4 ? mLow : mHigh, j & 3));
      const w00 = quantsLow45(kind, b0, j), w01 = quantsHigh45(kind, b0, j);
      const w10 = quantsLow45(kind, b1, j), w11 = quantsHigh45(kind, b1, j);
      const w20 = quantsLow45(kind, b2, j), w21 = quantsHigh45(kind, b2, j);
      const w30 = quantsLow45(kind, b3, j), w31 = quantsHigh45(kind, b3, j);
      const xb = xs + <usize>(sb * 8 + j) * <usize>ACTIVATION_BLOCK_BYTES;
      const a0 = v128.load(xb + <usize>ACTIVATION_QUANTS_OFFSET);
      const a1 = v128.load(xb + <usize>ACTIVATION_QUANTS_OFFSET, 16);
      const sums = rowSums(
        dotAdd(a1, w01, dotAdd(a0, w00, zero)),
        dotAdd(a1, w11, dotAdd(a0, w10, zero)),
        dotAdd(a1, w21, dotAdd(a0, w20, zero)),
        dotAdd(a1, w31, dotAdd(a0, w30, zero)),
      );
      const xd = f32x4.splat(load<f32>(xb));
      const xsum = f32x4.splat(load<f32>(xb) * <f32>load<i32>(xb + <usize>ACTIVATION_SUM_OFFSET));
      accS = f32x4.sub(f32x4.add(accS, f32x4.mul(f32x4.convert_i32x4_s(sums), f32x4.mul(scale, xd))), f32x4.mul(min, xsum));
      if (two) {
        const yb = xt + <usize>(sb * 8 + j) * <usize>ACTIVATION_BLOCK_BYTES;
        const c0 = v128.load(yb + <usize>ACTIVATION_QUANTS_OFFSET);
        const c1 = v128.load(yb + <usize>ACTIVATION_QUANTS_OFFSET, 16);
        const tsums = rowSums(
          dotAdd(c1, w01, dotAdd(c0, w00, zero)),
          dotAdd(c1, w11, dotAdd(c0, w10, zero)),
          dotAdd(c1, w21, dotAdd(c0, w20, zero)),
          dotAdd(c1, w31, dotAdd(c0, w30, zero)),
        );
        const yd = f32x4.splat(load<f32>(yb));
        const ysum = f32x4.splat(load<f32>(yb) * <f32>load<i32>(yb + <usize>ACTIVATION_SUM_OFFSET));
        accT = f32x4.sub(f32x4.add(accT, f32x4.mul(f32x4.convert_i32x4_s(tsums), f32x4.mul(scale, yd))), f32x4.mul(min, ysum));
      }
    }
  }
  storeRows(os, accS, valid);
  if (two) storeRows(ot, accT, valid);
}

// Activation bytes a chunk of tokens may take so that every row group finds them in cache.
const K_CHUNK_BYTES: usize = 192 * 1024;

// out[s · outStride + r] for packed K-quant weights (packKRows4) against quantized activations;
// cols is a multiple of 256 and rows start at a multiple of 4. Tiles of four rows × two tokens
// share every weight load and unpacked quant.
@inline function matmulK(kind: i32, out: usize, xq: usize, w: usize, rows: i32, cols: i32, seqLen: i32, outStride: i32): void {
  const superBlocks = cols / QK_K;
  const groupBytes = <usize>superBlocks * 4 * kBlockBytes(kind);
  const xRowBytes = <usize>(cols / QK) * <usize>ACTIVATION_BLOCK_BYTES;
  const chunk = max(2, min(seqLen, <i32>(K_CHUNK_BYTES / xRowBytes) & ~1));
  for (let s0 = 0; s0 < seqLen; s0 += chunk) {
    const sEnd = min(seqLen, s0 + chunk);
    for (let r = 0; r < rows; r += 4) {
      const group = w + <usize>(r >> 2) * groupBytes;
      let s = s0;
      for (; s + 1 < sEnd; s += 2) {
        const xs = xq + <usize>s * xRowBytes;
        const os = out + ((<usize>s * <usize>outStride + <usize>r) << 2);
        kTile(kind, true, group, superBlocks, xs, xs + xRowBytes, os, os + (<usize>outStride << 2), rows - r);
      }
      if (s < sEnd) {
        const xs = xq + <usize>s * xRowBytes;
        kTile(kind, false, group, superBlocks, xs, xs, out + ((<usize>s * <usize>outStride + <usize>r) << 2), 0, rows - r);
      }
    }
  }
}

export function matmulQ4_K(out: usize, xq: usize, w: usize, rows: i32, cols: i32, seqLen: i32, outStride: i32): void {
  matmulK(4, out, xq, w, rows, cols, seqLen, outStride);
}

export function matmulQ5_K(out: usize, xq: usize, w: usize, rows: i32, cols: i32, seqLen: i32, outStride: i32): void {
  matmulK(5, out, xq, w, rows, cols, seqLen, outStride);
}

export function matmulQ6_K(out: usize, xq: usize, w: usize, rows: i32, cols: i32, seqLen: i32, outStride: i32): void {
  matmulK(6, out, xq, w, rows, cols, seqLen, outStride);
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
          const q = quants6(block, b, <usize>h << 4);
          const ds = f32x4.splat(d * <f32>load<i8>(block + <usize>Q6_K_SCALES_OFFSET + <usize>(2 * b + h)));
          storeScaled16(dst + (<usize>(32 * b + 16 * h) << 2), q, ds, f32x4.splat(0), i16x8.splat(32), by);
        }
      }
      continue;
    }
    const d = f16ToF32(<u32>load<u16>(block));
    const dmin = f16ToF32(<u32>load<u16>(block, 2));
    const sm = scalesAndMins(block);
    for (let j = 0; j < 8; j++) {
      const ds = f32x4.splat(d * <f32>scaleByte(sm, j));
      const m = f32x4.splat(dmin * <f32>scaleByte(sm, j + 8));
      storeScaled16(dst + (<usize>(32 * j) << 2), quantsLow45(kind, block, j), ds, m, i16x8.splat(0), by);
      storeScaled16(dst + (<usize>(32 * j + 16) << 2), quantsHigh45(kind, block, j), ds, m, i16x8.splat(0), by);
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
