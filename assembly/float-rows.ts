// Float matrices (f32, bf16, f16) in groups of four rows (packFloatRows4), so that a thread reads
// its rows as one sequential stream: row-major, four rows side by side are four streams 2-37 KB
// long each, and decode read 25-69% of the bandwidth bound (docs/performance.md). Per chunk of four columns
// of a group: f32, the four rows' 16 bytes one after another (64 bytes); bf16 and f16, 32-bit
// words holding rows 0 and 1 (row 0 in the low half) for the chunk's columns, then rows 2 and 3
// (32 bytes), so a 16-byte load widens to two rows' f32x4 by a shift and a mask. A last group of
// fewer than four rows stays row-major. Only matrices whose cols are a multiple of 4 are packed.
import { F16_EXPONENT_SHIFT, madd } from "./simd";

// A bf16 word pair's upper half as f32; the bits an f16 in a lane's upper half keeps once shifted
// into f32 position (sign, exponent, mantissa). Globals, never written: they hide the constants
// from V8, which would rebuild them at every use (simd.ts).
export let HIGH_HALF: v128 = i32x4.splat(0xffff0000);
export let F16_HIGH_BITS: v128 = i32x4.splat(0x8fffe000);

// Four f16 values, each in the upper half of a 32-bit lane (the lower half ignored), as f32x4:
// an arithmetic shift by 3 puts sign, exponent and mantissa where f32 has them (the sign copied
// into bits 28-30, which the mask clears), and × 2^112 corrects the exponent (subnormals
// included). Inf and NaN come out as large finite values; weights hold none.
@inline function f16High(v: v128, bits: v128, shift: v128): v128 {
  return f32x4.mul(f16Raw(v, bits), shift);
}

// f16High before its multiply: 2^-112 times the values.
@inline function f16Raw(v: v128, bits: v128): v128 {
  return v128.and(i32x4.shr_s(v, 3), bits);
}

// T = i16: f16 weights (isSigned alone is true of f32 too).
@inline function isF16<T>(): bool {
  return isSigned<T>() && sizeof<T>() == 2;
}

// f16 matmuls skip f16High's multiply (the kernels' arithmetic pipes are what one thread runs
// short of): they take the weights as shifted, 2^-112 times their value, scale the activations by
// 2^64 as they load them (one multiply per four columns instead of four) and the sums by 2^48.
// Powers of two scale exactly, so the sums are bit for bit f16High's while |x| < 2^64 and every
// product and partial sum stays above 2^-78 in magnitude (smaller ones round as subnormals).
export let F16_X_SCALE: v128 = f32x4.splat(18446744073709551616.0);
export let F16_SUM_SCALE: v128 = f32x4.splat(281474976710656.0);

// Row i of chunk p as the matmuls take it: rowAt's, but f16 left 2^-112 times its value.
@inline function rowRaw<T>(p: usize, i: usize, high: v128, bits: v128): v128 {
  if (sizeof<T>() == 4) return v128.load(p + (i << 4));
  const pair = v128.load(p + ((i >> 1) << 4));
  if (isSigned<T>()) return f16Raw((i & 1) ? pair : i32x4.shl(pair, 16), bits);
  return (i & 1) ? v128.and(pair, high) : i32x4.shl(pair, 16);
}

// Four activations at p as the matmuls take them (f16 weights: × 2^64).
@inline function xAt<T>(p: usize, scale: v128): v128 {
  const v = v128.load(p);
  return isF16<T>() ? f32x4.mul(v, scale) : v;
}

// Bytes of one chunk (four columns) of a group of four rows of T (f32; u16: bf16; i16: f16).
@inline function chunkBytes<T>(): usize {
  return sizeof<T>() == 4 ? 64 : 32;
}

// Row i (0..3) of chunk p as f32x4 (columns 4j..4j+3); the masks come in registers.
@inline function rowAt<T>(p: usize, i: usize, high: v128, bits: v128, shift: v128): v128 {
  const raw = rowRaw<T>(p, i, high, bits);
  return isF16<T>() ? f32x4.mul(raw, shift) : raw;
}

// [Σa, Σb, Σc, Σd] of four rows' f32 lanes.
@inline function rowTotals(a: v128, b: v128, c: v128, d: v128): v128 {
  const ab = f32x4.add(v128.shuffle<f32>(a, b, 0, 1, 4, 5), v128.shuffle<f32>(a, b, 2, 3, 6, 7));
  const cd = f32x4.add(v128.shuffle<f32>(c, d, 0, 1, 4, 5), v128.shuffle<f32>(c, d, 2, 3, 6, 7));
  return f32x4.add(v128.shuffle<f32>(ab, cd, 0, 2, 4, 6), v128.shuffle<f32>(ab, cd, 1, 3, 5, 7));
}

// Rearranges the full groups of four rows of a row-major matrix of `cols` (a multiple of 4)
// elements of `elementBytes` (4: f32, 2: bf16/f16) in place, one group at a time through scratch.
export function packFloatRows4(w: usize, rows: i32, cols: i32, elementBytes: i32, scratch: usize): void {
  const rowBytes = <usize>cols * <usize>elementBytes;
  const chunks = <usize>(cols >> 2);
  for (let r = 0; r + 3 < rows; r += 4) {
    const group = w + <usize>r * rowBytes;
    memory.copy(scratch, group, 4 * rowBytes);
    for (let j: usize = 0; j < chunks; j++) {
      if (elementBytes == 4) {
        const dst = group + (j << 6);
        for (let i: usize = 0; i < 4; i++) v128.store(dst + (i << 4), v128.load(scratch + i * rowBytes + (j << 4)));
      } else {
        const dst = group + (j << 5);
        for (let i: usize = 0; i < 4; i += 2) {
          const low = v128.load64_zero(scratch + i * rowBytes + (j << 3));
          const high = v128.load64_zero(scratch + (i + 1) * rowBytes + (j << 3));
          v128.store(dst + (i << 3), v128.shuffle<u16>(low, high, 0, 8, 1, 9, 2, 10, 3, 11));
        }
      }
    }
  }
}

// out[s * outStride + r] = Σ_c x[s * cols + c] · w[r, c] over a slice of a packed matrix (rows
// start at a multiple of 4; only the matrix's last group may be partial, and it is row-major).
// Each token's sums run in one fixed order (even and odd chunks apart, eight sums in flight for a
// token alone), so its results do not depend on the tokens beside it: decoding one by one gives
// a prompt's own logits. f16 prompts take tokens two at a time through pairTile, in that same
// order; bf16 and f32 take them one at a time, the group read again from cache. (Tiles that
// shared weight loads across tokens in another order were 2% faster on bf16 and 15% on f32, but
// a token's sums then depended on its neighbours.)
@inline function matmulFloatRows4<T>(out: usize, x: usize, w: usize, rows: i32, cols: i32, seqLen: i32, outStride: i32): void {
  const high = HIGH_HALF, bits = F16_HIGH_BITS, shift = F16_EXPONENT_SHIFT;
  const xScale = F16_X_SCALE, sumScale = F16_SUM_SCALE;
  const chunks = <usize>(cols >> 2);
  const xRowBytes = <usize>cols << 2;
  const groupBytes = chunks * chunkBytes<T>();
  const full = rows & ~3;
  for (let r = 0; r < full; r += 4) {
    const group = w + <usize>(r >> 2) * groupBytes;
    let s = 0;
    // f16 prompts: two tokens share each widening (on bf16 and f32 the tile measured no faster).
    if (isF16<T>()) for (; s + 1 < seqLen; s += 2) {
      const o = out + ((<usize>s * <usize>outStride + <usize>r) << 2);
      pairTile<T>(o, o + (<usize>outStride << 2), x + <usize>s * xRowBytes, group, chunks, 0, xRowBytes);
      pairTile<T>(o + 8, o + (<usize>outStride << 2) + 8, x + <usize>s * xRowBytes, group, chunks, 2, xRowBytes);
    }
    for (; s < seqLen; s++) {
      const xs = x + <usize>s * xRowBytes;
      let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
      let b0 = f32x4.splat(0), b1 = f32x4.splat(0), b2 = f32x4.splat(0), b3 = f32x4.splat(0);
      let j: usize = 0;
      for (; j + 1 < chunks; j += 2) {
        const p = group + j * chunkBytes<T>();
        const q = p + chunkBytes<T>();
        const a = xAt<T>(xs + (j << 4), xScale);
        const b = xAt<T>(xs + (j << 4) + 16, xScale);
        a0 = madd(rowRaw<T>(p, 0, high, bits), a, a0);
        a1 = madd(rowRaw<T>(p, 1, high, bits), a, a1);
        a2 = madd(rowRaw<T>(p, 2, high, bits), a, a2);
        a3 = madd(rowRaw<T>(p, 3, high, bits), a, a3);
        b0 = madd(rowRaw<T>(q, 0, high, bits), b, b0);
        b1 = madd(rowRaw<T>(q, 1, high, bits), b, b1);
        b2 = madd(rowRaw<T>(q, 2, high, bits), b, b2);
        b3 = madd(rowRaw<T>(q, 3, high, bits), b, b3);
      }
      if (j < chunks) {
        const p = group + j * chunkBytes<T>();
        const a = xAt<T>(xs + (j << 4), xScale);
        a0 = madd(rowRaw<T>(p, 0, high, bits), a, a0);
        a1 = madd(rowRaw<T>(p, 1, high, bits), a, a1);
        a2 = madd(rowRaw<T>(p, 2, high, bits), a, a2);
        a3 = madd(rowRaw<T>(p, 3, high, bits), a, a3);
      }
      let sums = rowTotals(f32x4.add(a0, b0), f32x4.add(a1, b1), f32x4.add(a2, b2), f32x4.add(a3, b3));
      if (isF16<T>()) sums = f32x4.mul(sums, sumScale);
      v128.store(out + ((<usize>s * <usize>outStride + <usize>r) << 2), sums);
    }
  }
  // The matrix's last rows, row-major.
  const rowBytes = <usize>cols * sizeof<T>();
  for (let r = full; r < rows; r++) {
    const wr = w + <usize>r * rowBytes;
    for (let s = 0; s < seqLen; s++) {
      const xs = x + <usize>s * xRowBytes;
      let acc = f32x4.splat(0);
      for (let j: usize = 0; j < chunks; j++) {
        acc = madd(loadRow4<T>(wr + j * (sizeof<T>() << 2), bits, shift), v128.load(xs + (j << 4)), acc);
      }
      const lanes = rowTotals(acc, acc, acc, acc);
      store<f32>(out + ((<usize>s * <usize>outStride + <usize>r) << 2), f32x4.extract_lane(lanes, 0));
    }
  }
}

// Rows `half` and half + 1 of a group against tokens s and t = s + 1 (x rows at xs, xs + xRowBytes):
// each weight load and widening serves both tokens. Per row and token the sums are the one-token
// path's, in its order (even and odd chunks apart, then the same lane reduction), so the results
// are the same bits.
@inline function pairTile<T>(outS: usize, outT: usize, xs: usize, group: usize, chunks: usize, half: usize, xRowBytes: usize): void {
  const high = HIGH_HALF, bits = F16_HIGH_BITS, xScale = F16_X_SCALE;
  const xt = xs + xRowBytes;
  let e0s = f32x4.splat(0), o0s = f32x4.splat(0), e1s = f32x4.splat(0), o1s = f32x4.splat(0);
  let e0t = f32x4.splat(0), o0t = f32x4.splat(0), e1t = f32x4.splat(0), o1t = f32x4.splat(0);
  let j: usize = 0;
  for (; j + 1 < chunks; j += 2) {
    const p = group + j * chunkBytes<T>();
    const q = p + chunkBytes<T>();
    const w0p = rowRaw<T>(p, half, high, bits), w1p = rowRaw<T>(p, half + 1, high, bits);
    const w0q = rowRaw<T>(q, half, high, bits), w1q = rowRaw<T>(q, half + 1, high, bits);
    const sp = xAt<T>(xs + (j << 4), xScale), sq = xAt<T>(xs + (j << 4) + 16, xScale);
    const tp = xAt<T>(xt + (j << 4), xScale), tq = xAt<T>(xt + (j << 4) + 16, xScale);
    e0s = madd(w0p, sp, e0s);
    e1s = madd(w1p, sp, e1s);
    o0s = madd(w0q, sq, o0s);
    o1s = madd(w1q, sq, o1s);
    e0t = madd(w0p, tp, e0t);
    e1t = madd(w1p, tp, e1t);
    o0t = madd(w0q, tq, o0t);
    o1t = madd(w1q, tq, o1t);
  }
  if (j < chunks) {
    const p = group + j * chunkBytes<T>();
    const w0p = rowRaw<T>(p, half, high, bits), w1p = rowRaw<T>(p, half + 1, high, bits);
    const sp = xAt<T>(xs + (j << 4), xScale), tp = xAt<T>(xt + (j << 4), xScale);
    e0s = madd(w0p, sp, e0s);
    e1s = madd(w1p, sp, e1s);
    e0t = madd(w0p, tp, e0t);
    e1t = madd(w1p, tp, e1t);
  }
  // Lanes: (row half, s), (row half + 1, s), (row half, t), (row half + 1, t).
  let sums = rowTotals(f32x4.add(e0s, o0s), f32x4.add(e1s, o1s), f32x4.add(e0t, o0t), f32x4.add(e1t, o1t));
  if (isF16<T>()) sums = f32x4.mul(sums, F16_SUM_SCALE);
  v128.store64_lane(outS, sums, 0);
  v128.store64_lane(outT, sums, 1);
}

// Four consecutive elements of a row-major row as f32x4.
@inline function loadRow4<T>(p: usize, bits: v128, shift: v128): v128 {
  if (sizeof<T>() == 4) return v128.load(p);
  const upper = i32x4.shl(v128.load16x4_u(p), 16);
  return isSigned<T>() ? f16High(upper, bits, shift) : upper;
}

export function matmulF32Rows4(out: usize, x: usize, w: usize, rows: i32, cols: i32, seqLen: i32, outStride: i32): void {
  matmulFloatRows4<f32>(out, x, w, rows, cols, seqLen, outStride);
}

export function matmulBf16Rows4(out: usize, x: usize, w: usize, rows: i32, cols: i32, seqLen: i32, outStride: i32): void {
  matmulFloatRows4<u16>(out, x, w, rows, cols, seqLen, outStride);
}

export function matmulF16Rows4(out: usize, x: usize, w: usize, rows: i32, cols: i32, seqLen: i32, outStride: i32): void {
  matmulFloatRows4<i16>(out, x, w, rows, cols, seqLen, outStride);
}

// out[c] = row `row` of a packed float matrix (kind 0: f32, 1: bf16, 2: f16) × scale, the product
// taken in f64 and rounded to f32 as the TypeScript reference's embed does.
export function embedFloatRow(out: usize, w: usize, row: i32, rows: i32, cols: i32, kind: i32, scale: f64): void {
  if (kind == 0) embedFloatRowFor<f32>(out, w, row, rows, cols, scale);
  else if (kind == 1) embedFloatRowFor<u16>(out, w, row, rows, cols, scale);
  else embedFloatRowFor<i16>(out, w, row, rows, cols, scale);
}

@inline function embedFloatRowFor<T>(out: usize, w: usize, row: i32, rows: i32, cols: i32, scale: f64): void {
  const high = HIGH_HALF, bits = F16_HIGH_BITS, shift = F16_EXPONENT_SHIFT;
  const chunks = <usize>(cols >> 2);
  const by = f64x2.splat(scale);
  const rowMajor = row >= (rows & ~3);
  const rowBytes = <usize>cols * sizeof<T>();
  const group = w + <usize>(row >> 2) * 4 * rowBytes;
  for (let j: usize = 0; j < chunks; j++) {
    const v = rowMajor
      ? loadRow4<T>(w + <usize>row * rowBytes + j * (sizeof<T>() << 2), bits, shift)
      : rowAt<T>(group + j * chunkBytes<T>(), <usize>(row & 3), high, bits, shift);
    const low = f32x4.demote_f64x2_zero(f64x2.mul(f64x2.promote_low_f32x4(v), by));
    const upper = f32x4.demote_f64x2_zero(f64x2.mul(f64x2.promote_low_f32x4(v128.shuffle<f32>(v, v, 2, 3, 0, 1)), by));
    v128.store(out + (j << 4), v128.shuffle<f32>(low, upper, 0, 1, 4, 5));
  }
}
