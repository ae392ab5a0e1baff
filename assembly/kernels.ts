// Every WebAssembly SIMD kernel of the wasm backend (compiled with asc --enable simd): matmuls
// out[s * outStride + r] = Σ_c x[s * cols + c] · w[r * cols + c], y = x Wᵀ with W in PyTorch
// [out, in] layout, for weights in f32, bf16 and f16 (widened in registers) and in Q8_0 / Q4_0
// blocks packed in groups of four rows (packRows4; against activations quantized to int8 blocks
// by quantizeActivations); attention, GeGLU, soft-cap, embedding rows, RG-LRU gate projections;
// quantizing rows on load; and the row-streaming kernel the bandwidth benchmark uses. outStride
// lets a thread compute a slice of rows (w and out offset to it); four weight rows per pass share
// every load of x.
import {
  ACTIVATION_BLOCK_BYTES,
  ACTIVATION_K_BLOCK_BYTES,
  ACTIVATION_QUANTS_OFFSET,
  ACTIVATION_BIAS_OFFSET,
  Q4_0_BLOCK_BYTES,
  Q4_0_QUANTS_OFFSET,
  Q8_0_BLOCK_BYTES,
  Q8_0_QUANTS_OFFSET,
  QK,
  QK_K,
  SPLIT_BLOCK_BYTES,
  SPLIT_NEG_OFFSET,
  SPLIT_POS_OFFSET,
} from "./block-layout";
import { quantizeActivationsK } from "./k-quants";
import { matmulQ4_0Tiles, tiledFor } from "./prompt-tiles";
import { matmulQ4_0Rows } from "./q4_0-rows";
import { conv1dChannels, rgLruScanChannels } from "./rows";
import { absMax, int8Lanes, laneSum, quants } from "./quantize-activations";
import {
  dot16,
  F16_EXPONENT_SHIFT,
  F16_MAGNITUDE,
  F16_SIGN,
  f16ToF32,
  gatherLanes,
  halvesToF32,
  madd,
  ONES_I16,
  PAIR_DOTS,
  pairForm,
  rowSums,
  storeRows,
  storeTransposed,
  sum4,
} from "./simd";

// RELAXED is set by the build (`--use RELAXED=0|1`): 1 compiles the relaxed-SIMD int8 dot products
// (kernels-relaxed*.wasm), 0 the plain SIMD fallback (kernels*.wasm).

// Exported as globals of the module, so a test can check them against the TypeScript layouts.
export * from "./block-layout";

// The K-quant kernels live in their own file, and so do RoPE, the adds and the convolution, and
// the float matmuls over packed groups of four rows.
export * from "./k-quants";
export * from "./rows";
export * from "./float-rows";
export { usePairDots } from "./simd";

@inline function loadBf16x4(ptr: usize): v128 {
  return i32x4.shl(v128.load16x4_u(ptr), 16);
}

@inline function bf16At(ptr: usize): f32 {
  return reinterpret<f32>((<u32>load<u16>(ptr)) << 16);
}

// IEEE half → f32 in registers: the 15 magnitude bits shifted into f32 position are the value
// scaled by 2^-112 (subnormals included), so one multiply fixes the exponent. Inf/NaN halves come
// out as large finite values; weights hold none.
@inline function loadF16x4(ptr: usize): v128 {
  return halvesToF32(v128.load16x4_u(ptr));
}

// A weight element: f32 (T = f32), bf16 (T = u16) or f16 (T = i16); resolved at compile time.
@inline function loadW4<T>(ptr: usize): v128 {
  if (sizeof<T>() == 4) return v128.load(ptr);
  if (isSigned<T>()) return loadF16x4(ptr);
  return loadBf16x4(ptr);
}

@inline function loadW1<T>(ptr: usize): f32 {
  if (sizeof<T>() == 4) return load<f32>(ptr);
  if (isSigned<T>()) return f16ToF32(<u32>load<u16>(ptr));
  return bf16At(ptr);
}

@inline function matmulFloat<T>(out: usize, x: usize, w: usize, rows: i32, cols: i32, seqLen: i32, outStride: i32): void {
  const size = <usize>sizeof<T>();
  const vecEnd = cols & ~3;
  const xRowBytes = <usize>cols << 2;
  const wRowBytes = <usize>cols * size;
  let r = 0;
  for (; r + 3 < rows; r += 4) {
    const w0 = w + <usize>r * wRowBytes;
    const w1 = w0 + wRowBytes;
    const w2 = w1 + wRowBytes;
    const w3 = w2 + wRowBytes;
    for (let s = 0; s < seqLen; s++) {
      const xs = x + <usize>s * xRowBytes;
      // Two sums per row (even and odd chunks of four columns): eight multiply-adds in flight.
      let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
      let b0 = f32x4.splat(0), b1 = f32x4.splat(0), b2 = f32x4.splat(0), b3 = f32x4.splat(0);
      let c = 0;
      for (; c + 8 <= vecEnd; c += 8) {
        const xv = v128.load(xs + (<usize>c << 2));
        const yv = v128.load(xs + (<usize>c << 2), 16);
        const off = <usize>c * size;
        const next = off + 4 * size;
        a0 = madd(xv, loadW4<T>(w0 + off), a0);
        a1 = madd(xv, loadW4<T>(w1 + off), a1);
        a2 = madd(xv, loadW4<T>(w2 + off), a2);
        a3 = madd(xv, loadW4<T>(w3 + off), a3);
        b0 = madd(yv, loadW4<T>(w0 + next), b0);
        b1 = madd(yv, loadW4<T>(w1 + next), b1);
        b2 = madd(yv, loadW4<T>(w2 + next), b2);
        b3 = madd(yv, loadW4<T>(w3 + next), b3);
      }
      if (c < vecEnd) {
        const xv = v128.load(xs + (<usize>c << 2));
        const off = <usize>c * size;
        a0 = madd(xv, loadW4<T>(w0 + off), a0);
        a1 = madd(xv, loadW4<T>(w1 + off), a1);
        a2 = madd(xv, loadW4<T>(w2 + off), a2);
        a3 = madd(xv, loadW4<T>(w3 + off), a3);
      }
      let t0 = sum4(f32x4.add(a0, b0)), t1 = sum4(f32x4.add(a1, b1)), t2 = sum4(f32x4.add(a2, b2)), t3 = sum4(f32x4.add(a3, b3));
      for (let c = vecEnd; c < cols; c++) {
        const xv = load<f32>(xs + (<usize>c << 2));
        const off = <usize>c * size;
        t0 += xv * loadW1<T>(w0 + off);
        t1 += xv * loadW1<T>(w1 + off);
        t2 += xv * loadW1<T>(w2 + off);
        t3 += xv * loadW1<T>(w3 + off);
      }
      const o = out + ((<usize>s * <usize>outStride + <usize>r) << 2);
      store<f32>(o, t0);
      store<f32>(o, t1, 4);
      store<f32>(o, t2, 8);
      store<f32>(o, t3, 12);
    }
  }
  for (; r < rows; r++) {
    const wr = w + <usize>r * wRowBytes;
    for (let s = 0; s < seqLen; s++) {
      const xs = x + <usize>s * xRowBytes;
      let a = f32x4.splat(0);
      for (let c = 0; c < vecEnd; c += 4) a = f32x4.add(a, f32x4.mul(v128.load(xs + (<usize>c << 2)), loadW4<T>(wr + <usize>c * size)));
      let t = sum4(a);
      for (let c = vecEnd; c < cols; c++) t += load<f32>(xs + (<usize>c << 2)) * loadW1<T>(wr + <usize>c * size);
      store<f32>(out + ((<usize>s * <usize>outStride + <usize>r) << 2), t);
    }
  }
}

export function matmulF32(out: usize, x: usize, w: usize, rows: i32, cols: i32, seqLen: i32, outStride: i32): void {
  matmulFloat<f32>(out, x, w, rows, cols, seqLen, outStride);
}

export function matmulBf16(out: usize, x: usize, w: usize, rows: i32, cols: i32, seqLen: i32, outStride: i32): void {
  matmulFloat<u16>(out, x, w, rows, cols, seqLen, outStride);
}

export function matmulF16(out: usize, x: usize, w: usize, rows: i32, cols: i32, seqLen: i32, outStride: i32): void {
  matmulFloat<i16>(out, x, w, rows, cols, seqLen, outStride);
}

// Reads `rows` rows of cols × 4 bytes as fast as the memory allows (the bandwidth benchmark): each
// row's 32-bit words are summed into out[r] so the loads cannot be skipped.
export function streamRows(out: usize, x: usize, w: usize, rows: i32, cols: i32, seqLen: i32, outStride: i32): void {
  const rowBytes = <usize>cols << 2;
  for (let r = 0; r < rows; r++) {
    const row = w + <usize>r * rowBytes;
    let a = i32x4.splat(0);
    let b = i32x4.splat(0);
    let c = i32x4.splat(0);
    let d = i32x4.splat(0);
    let at: usize = 0;
    for (; at + 64 <= rowBytes; at += 64) {
      a = i32x4.add(a, v128.load(row + at));
      b = i32x4.add(b, v128.load(row + at, 16));
      c = i32x4.add(c, v128.load(row + at, 32));
      d = i32x4.add(d, v128.load(row + at, 48));
    }
    const sum = i32x4.add(i32x4.add(a, b), i32x4.add(c, d));
    const total = i32x4.extract_lane(sum, 0) + i32x4.extract_lane(sum, 1) + i32x4.extract_lane(sum, 2) + i32x4.extract_lane(sum, 3);
    store<i32>(out + (<usize>r << 2), total);
  }
}

// Whether Q8_0 weights read split activations: relaxed SIMD's int8 dot is exact only when its
// second operand lies in 0..127, so signed activations go in as x = pos − neg.
@inline function splitFor<T>(): bool {
  return RELAXED && isSigned<T>();
}

@inline function activationBytes<T>(): usize {
  return splitFor<T>() ? <usize>SPLIT_BLOCK_BYTES : <usize>ACTIVATION_BLOCK_BYTES;
}

// Activations are quantized per QK values too (an f32 scale per block, round half away from zero,
// computed in f32), so quantized rows can be dotted in integers; in the layout the weight type's
// kernel reads (q8 != 0: Q8_0 weights, else Q4_0). Once per matmul, not per weight row.
export function quantizeActivations(x: usize, out: usize, cols: i32, seqLen: i32, q8: i32): void {
  if (q8) quantizeActivationsFor<i8>(x, out, cols, seqLen);
  else quantizeActivationsFor<u8>(x, out, cols, seqLen);
}

// Tokens [from, to) of x quantized as quantizeActivations (kind 1: for Q8_0, 0: Q4_0) or
// quantizeActivationsK (kind 2) quantizes them, into their places in out: one thread's share.
export function quantizeActivationTokens(x: usize, out: usize, cols: i32, from: i32, to: i32, kind: i32): void {
  const src = x + ((<usize>from * <usize>cols) << 2);
  if (kind == 2) {
    quantizeActivationsK(src, out + <usize>from * <usize>(cols / QK_K) * <usize>ACTIVATION_K_BLOCK_BYTES, cols, to - from);
  } else if (kind == 1) {
    quantizeActivationsFor<i8>(src, out + <usize>from * <usize>(cols / QK) * activationBytes<i8>(), cols, to - from);
  } else {
    quantizeActivationsFor<u8>(src, out + <usize>from * <usize>(cols / QK) * activationBytes<u8>(), cols, to - from);
  }
}

@inline function quantizeActivationsFor<T>(x: usize, out: usize, cols: i32, seqLen: i32): void {
  const blocks = cols / QK;
  const bytes = activationBytes<T>();
  for (let s = 0; s < seqLen; s++) {
    for (let b = 0; b < blocks; b++) {
      const src = x + ((<usize>s * <usize>cols + <usize>b * <usize>QK) << 2);
      const dst = out + (<usize>s * <usize>blocks + <usize>b) * bytes;
      const d: f32 = absMax(src, QK) / 127;
      const inverse = f32x4.splat(d == 0 ? 0 : <f32>1 / d);
      store<f32>(dst, d);
      let sums = i32x4.splat(0);
      for (let i: usize = 0; i < <usize>QK; i += 16) {
        const v = src + (i << 2);
        const q0 = quants(v, inverse), q1 = quants(v + 16, inverse), q2 = quants(v + 32, inverse), q3 = quants(v + 48, inverse);
        sums = i32x4.add(sums, i32x4.add(i32x4.add(q0, q1), i32x4.add(q2, q3)));
        if (splitFor<T>()) {
          const zero = i32x4.splat(0);
          const pos = int8Lanes(i32x4.max_s(q0, zero), i32x4.max_s(q1, zero), i32x4.max_s(q2, zero), i32x4.max_s(q3, zero));
          v128.store(dst + <usize>SPLIT_POS_OFFSET + i, pos);
          v128.store(dst + <usize>SPLIT_NEG_OFFSET + i, i8x16.sub(pos, int8Lanes(q0, q1, q2, q3)));
        } else {
          v128.store(dst + <usize>ACTIVATION_QUANTS_OFFSET + i, int8Lanes(q0, q1, q2, q3));
        }
      }
      store<i32>(dst + <usize>ACTIVATION_BIAS_OFFSET, -8 * laneSum(sums));
    }
  }
}

// Quantized matrices live in WebAssembly memory as groups of four rows (packRows4): for each
// block column b, the four rows' f16 scales (8 bytes) then their four quant arrays, so one
// sequential stream feeds four rows (row-major, four rows are four streams, and decode read
// a quarter of the bandwidth). A last group with fewer rows repeats its last row.
@inline function quantBytes<T>(): usize {
  return isSigned<T>() ? <usize>QK : <usize>(QK / 2);
}

@inline function groupBlockBytes<T>(): usize {
  return 8 + 4 * quantBytes<T>();
}

// Q4_0 row i's 16 quant bytes in group block gb: lane k of the group's vector V_k (q4_0-rows.ts).
@inline function q4Row(gb: usize, i: usize): v128 {
  return gatherLanes(gb + 8 + (i << 2), 16);
}

// Row i's 32 weight values in group block gb as two i8x16 halves (values 0..15 and 16..31),
// chosen at compile time: T = i8 for Q8_0 (int8 as stored), T = u8 for Q4_0 (the raw nibbles
// 0..15: low nibbles are values 0..15, high 16..31; the −8 offset is applied once per block
// through the activations' bias).
@inline function weightsLow<T>(gb: usize, i: usize): v128 {
  if (isSigned<T>()) return v128.load(gb + 8 + i * quantBytes<T>());
  return v128.and(q4Row(gb, i), i8x16.splat(0x0f));
}

@inline function weightsHigh<T>(gb: usize, i: usize): v128 {
  if (isSigned<T>()) return v128.load(gb + 8 + i * quantBytes<T>(), 16);
  return i8x16.shr_u(q4Row(gb, i), 4);
}

// Rearranges a row-major matrix of Q8_0 (q8 != 0) or Q4_0 blocks at w, in place, into groups of
// four rows; the memory after it must hold the last group's missing rows, and `scratch` four
// rows. A group takes exactly the bytes of its four rows, so no second copy of a matrix exists.
// Q8_0 rows' quants follow one another; Q4_0's are interleaved by 4 bytes (q4_0-rows.ts).
export function packRows4(w: usize, rows: i32, cols: i32, q8: i32, scratch: usize): void {
  if (q8) packRows4For<i8>(w, rows, cols, scratch);
  else packRows4For<u8>(w, rows, cols, scratch);
}

@inline function packRows4For<T>(w: usize, rows: i32, cols: i32, scratch: usize): void {
  const blocks = <usize>(cols / QK);
  const size = blockBytes<T>();
  const quants = quantBytes<T>();
  const rowBytes = blocks * size;
  for (let r = 0; r < rows; r += 4) {
    const group = w + <usize>r * rowBytes;
    const have = <usize>min(4, rows - r);
    memory.copy(scratch, group, have * rowBytes);
    for (let i = have; i < 4; i++) memory.copy(scratch + i * rowBytes, scratch + (have - 1) * rowBytes, rowBytes);
    for (let b: usize = 0; b < blocks; b++) {
      const gb = group + b * groupBlockBytes<T>();
      for (let i: usize = 0; i < 4; i++) store<u16>(gb + (i << 1), load<u16>(scratch + i * rowBytes + b * size));
      const src = scratch + b * size + 2;
      if (isSigned<T>()) {
        for (let i: usize = 0; i < 4; i++) {
          v128.store(gb + 8 + i * quants, v128.load(src + i * rowBytes));
          v128.store(gb + 8 + i * quants, v128.load(src + i * rowBytes, 16), 16);
        }
      } else {
        const r2 = src + 2 * rowBytes;
        storeTransposed(gb + 8, 16, v128.load(src), v128.load(src + rowBytes), v128.load(r2), v128.load(r2 + rowBytes));
      }
    }
  }
}

// out[c] = scale · row `row` of a packed Q8_0 (q8 != 0) or Q4_0 matrix: the embedding lookup.
export function embedRow(out: usize, w: usize, row: i32, cols: i32, q8: i32, scale: f32): void {
  if (q8) embedRowFor<i8>(out, w, row, cols, scale);
  else embedRowFor<u8>(out, w, row, cols, scale);
}

@inline function embedRowFor<T>(out: usize, w: usize, row: i32, cols: i32, scale: f32): void {
  const blocks = <usize>(cols / QK);
  const group = w + <usize>(row >> 2) * blocks * groupBlockBytes<T>();
  const i = <usize>(row & 3);
  for (let b: usize = 0; b < blocks; b++) {
    const gb = group + b * groupBlockBytes<T>();
    // The row's scale is lane i; value = d·q then × scale, as the TypeScript reference rounds.
    const d = f32x4.splat(f16ToF32(<u32>load<u16>(gb + (i << 1))));
    const by = f32x4.splat(scale);
    const dst = out + (b << 7);
    const lo = weightsLow<T>(gb, i);
    const hi = weightsHigh<T>(gb, i);
    const offset = isSigned<T>() ? i16x8.splat(0) : i16x8.splat(8);
    // Each half of 16 values as four f32x4.
    for (let h = 0; h < 2; h++) {
      const q = h ? hi : lo;
      const wide0 = i16x8.sub(i16x8.extend_low_i8x16_s(q), offset);
      const wide1 = i16x8.sub(i16x8.extend_high_i8x16_s(q), offset);
      const o = dst + (<usize>h << 6);
      v128.store(o, f32x4.mul(f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(wide0)), d), by));
      v128.store(o, f32x4.mul(f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(wide0)), d), by), 16);
      v128.store(o, f32x4.mul(f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(wide1)), d), by), 32);
      v128.store(o, f32x4.mul(f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(wide1)), d), by), 48);
    }
  }
}

@inline function blockBytes<T>(): usize {
  return isSigned<T>() ? <usize>Q8_0_BLOCK_BYTES : <usize>Q4_0_BLOCK_BYTES;
}

// One activation block's operands: (a0, a1) its two halves, or for split activations the positive
// halves, and (b0, b1) the negative halves.
@inline function operandA0<T>(xb: usize): v128 {
  return v128.load(xb + (splitFor<T>() ? <usize>SPLIT_POS_OFFSET : <usize>ACTIVATION_QUANTS_OFFSET));
}

@inline function operandA1<T>(xb: usize): v128 {
  return v128.load(xb + (splitFor<T>() ? <usize>SPLIT_POS_OFFSET : <usize>ACTIVATION_QUANTS_OFFSET) + 16);
}

@inline function operandB0<T>(xb: usize): v128 {
  return splitFor<T>() ? v128.load(xb + <usize>SPLIT_NEG_OFFSET) : i32x4.splat(0);
}

@inline function operandB1<T>(xb: usize): v128 {
  return splitFor<T>() ? v128.load(xb + <usize>SPLIT_NEG_OFFSET + 16) : i32x4.splat(0);
}

// Σ q_w·q_x of one Q8_0 weight block (halves w0, w1) against one activation block, as four i32
// lanes. Relaxed SIMD (RELAXED=1 builds): 16 products per instruction instead of 8 after widening;
// its second operand must lie in 0..127: the positive and negative parts of split activations.
// D = i16: the pair-sum form (simd.ts usePairDots); a pair w·pos − w·neg is w0·x0 + w1·x1, at most
// 2 · 128 · 127 = 32512 in magnitude, so the 16-bit subtraction is exact.
@inline function blockInts<T, D>(w0: v128, w1: v128, a0: v128, a1: v128, b0: v128, b1: v128, ones: v128): v128 {
  if (pairForm<D>()) {
    const h0 = i16x8.sub(i16x8.relaxed_dot_i8x16_i7x16_s(w0, a0), i16x8.relaxed_dot_i8x16_i7x16_s(w0, b0));
    const h1 = i16x8.sub(i16x8.relaxed_dot_i8x16_i7x16_s(w1, a1), i16x8.relaxed_dot_i8x16_i7x16_s(w1, b1));
    return i32x4.add(i32x4.dot_i16x8_s(h0, ones), i32x4.dot_i16x8_s(h1, ones));
  }
  if (RELAXED) {
    // The second dot accumulates onto the first (one instruction with VNNI).
    const zero = i32x4.splat(0);
    const pos = i32x4.relaxed_dot_i8x16_i7x16_add_s(w1, a1, i32x4.relaxed_dot_i8x16_i7x16_add_s(w0, a0, zero));
    const neg = i32x4.relaxed_dot_i8x16_i7x16_add_s(w1, b1, i32x4.relaxed_dot_i8x16_i7x16_add_s(w0, b0, zero));
    return i32x4.sub(pos, neg);
  }
  return i32x4.add(dot16(w0, a0), dot16(w1, a1));
}

// Four rows' integer block sums scaled by d_w · d_x, added to acc (one instruction with FMA).
@inline function accumulate<T>(acc: v128, sums: v128, xb: usize, scales: v128): v128 {
  const scale = f32x4.mul(scales, f32x4.splat(load<f32>(xb)));
  return madd(f32x4.convert_i32x4_s(sums), scale, acc);
}

// Activation bytes a chunk of tokens may take so that every row group finds them in cache.
const CHUNK_BYTES: usize = 192 * 1024;

// Packed Q8_0 weights (T = i8; packRows4; Q4_0 has its own kernels: q4_0-rows.ts and
// prompt-tiles.ts) against activations quantized by quantizeActivations; cols is a multiple of QK
// and rows start at a multiple of 4. Tiles of four rows × two tokens share every weight load and
// scale; the four rows' sums go through one vector per token. Tokens run in chunks whose
// activations stay in cache while all row groups pass over them.
@inline function matmulBlocks<T, D>(out: usize, xq: usize, w: usize, rows: i32, cols: i32, seqLen: i32, outStride: i32): void {
  const blocks = cols / QK;
  const groupBytes = <usize>blocks * groupBlockBytes<T>();
  const xBytes = activationBytes<T>();
  const xRowBytes = <usize>blocks * xBytes;
  const chunk = max(2, min(seqLen, <i32>(CHUNK_BYTES / xRowBytes) & ~1));
  // The f16 scales' conversion constants, read once (hot loops keep them in registers).
  const signMask = F16_SIGN, magnitudeMask = F16_MAGNITUDE, exponentShift = F16_EXPONENT_SHIFT;
  const ones = ONES_I16;
  for (let s0 = 0; s0 < seqLen; s0 += chunk) {
    const sEnd = min(seqLen, s0 + chunk);
    for (let r = 0; r < rows; r += 4) {
      const group = w + <usize>(r >> 2) * groupBytes;
      const valid = rows - r;
      let s = s0;
      for (; s + 1 < sEnd; s += 2) {
        const xs = xq + <usize>s * xRowBytes;
        const xt = xs + xRowBytes;
        let accS = f32x4.splat(0);
        let accT = f32x4.splat(0);
        for (let b = 0; b < blocks; b++) {
          const gb = group + <usize>b * groupBlockBytes<T>();
          const xb = xs + <usize>b * xBytes;
          const yb = xt + <usize>b * xBytes;
          const sa0 = operandA0<T>(xb), sa1 = operandA1<T>(xb), sb0 = operandB0<T>(xb), sb1 = operandB1<T>(xb);
          const ta0 = operandA0<T>(yb), ta1 = operandA1<T>(yb), tb0 = operandB0<T>(yb), tb1 = operandB1<T>(yb);
          let lo = weightsLow<T>(gb, 0), hi = weightsHigh<T>(gb, 0);
          const s0i = blockInts<T, D>(lo, hi, sa0, sa1, sb0, sb1, ones);
          const t0i = blockInts<T, D>(lo, hi, ta0, ta1, tb0, tb1, ones);
          lo = weightsLow<T>(gb, 1);
          hi = weightsHigh<T>(gb, 1);
          const s1i = blockInts<T, D>(lo, hi, sa0, sa1, sb0, sb1, ones);
          const t1i = blockInts<T, D>(lo, hi, ta0, ta1, tb0, tb1, ones);
          lo = weightsLow<T>(gb, 2);
          hi = weightsHigh<T>(gb, 2);
          const s2i = blockInts<T, D>(lo, hi, sa0, sa1, sb0, sb1, ones);
          const t2i = blockInts<T, D>(lo, hi, ta0, ta1, tb0, tb1, ones);
          lo = weightsLow<T>(gb, 3);
          hi = weightsHigh<T>(gb, 3);
          const s3i = blockInts<T, D>(lo, hi, sa0, sa1, sb0, sb1, ones);
          const t3i = blockInts<T, D>(lo, hi, ta0, ta1, tb0, tb1, ones);
          const scales = halvesToF32(v128.load16x4_u(gb), signMask, magnitudeMask, exponentShift);
          accS = accumulate<T>(accS, rowSums(s0i, s1i, s2i, s3i), xb, scales);
          accT = accumulate<T>(accT, rowSums(t0i, t1i, t2i, t3i), yb, scales);
        }
        storeRows(out + ((<usize>s * <usize>outStride + <usize>r) << 2), accS, valid);
        storeRows(out + ((<usize>(s + 1) * <usize>outStride + <usize>r) << 2), accT, valid);
      }
      if (s < sEnd) {
        const xs = xq + <usize>s * xRowBytes;
        let acc = f32x4.splat(0);
        for (let b = 0; b < blocks; b++) {
          const gb = group + <usize>b * groupBlockBytes<T>();
          const xb = xs + <usize>b * xBytes;
          const a0 = operandA0<T>(xb), a1 = operandA1<T>(xb), b0 = operandB0<T>(xb), b1 = operandB1<T>(xb);
          const i0 = blockInts<T, D>(weightsLow<T>(gb, 0), weightsHigh<T>(gb, 0), a0, a1, b0, b1, ones);
          const i1 = blockInts<T, D>(weightsLow<T>(gb, 1), weightsHigh<T>(gb, 1), a0, a1, b0, b1, ones);
          const i2 = blockInts<T, D>(weightsLow<T>(gb, 2), weightsHigh<T>(gb, 2), a0, a1, b0, b1, ones);
          const i3 = blockInts<T, D>(weightsLow<T>(gb, 3), weightsHigh<T>(gb, 3), a0, a1, b0, b1, ones);
          acc = accumulate<T>(acc, rowSums(i0, i1, i2, i3), xb, halvesToF32(v128.load16x4_u(gb), signMask, magnitudeMask, exponentShift));
        }
        storeRows(out + ((<usize>s * <usize>outStride + <usize>r) << 2), acc, valid);
      }
    }
  }
}

export function matmulQ8_0(out: usize, xq: usize, w: usize, rows: i32, cols: i32, seqLen: i32, outStride: i32): void {
  if (PAIR_DOTS) matmulBlocks<i8, i16>(out, xq, w, rows, cols, seqLen, outStride);
  else matmulBlocks<i8, i32>(out, xq, w, rows, cols, seqLen, outStride);
}

// `scratch`: this thread's PROMPT_TILE_BLOCK_BYTES per block column, for prompt tiles.
export function matmulQ4_0(out: usize, xq: usize, w: usize, rows: i32, cols: i32, seqLen: i32, outStride: i32, scratch: usize): void {
  // Only relaxed builds compile the tiles (their dot needs relaxed SIMD).
  if (RELAXED && tiledFor(seqLen)) {
    if (PAIR_DOTS) matmulQ4_0Tiles<i16>(out, xq, w, rows, cols, seqLen, outStride, scratch);
    else matmulQ4_0Tiles<i32>(out, xq, w, rows, cols, seqLen, outStride, scratch);
  } else if (PAIR_DOTS) matmulQ4_0Rows<i16>(out, xq, w, rows, cols, seqLen, outStride);
  else matmulQ4_0Rows<i32>(out, xq, w, rows, cols, seqLen, outStride);
}

// The constants of exp4, tanh4 and geluTanh4 as globals: V8 rebuilds a v128 constant at every
// use inside a loop (three instructions), where a global is one load (simd.ts says more).
let EXP_HIGH: v128 = f32x4.splat(88);
let EXP_LOW: v128 = f32x4.splat(-87);
let EXP_ROUND: v128 = f32x4.splat(12582912.0);
let EXP_LOG2E: v128 = f32x4.splat(1.4426950408889634);
let EXP_LN2_HIGH: v128 = f32x4.splat(0.693359375);
let EXP_LN2_LOW: v128 = f32x4.splat(-2.12194440e-4);
let EXP_C7: v128 = f32x4.splat(<f32>(1.0 / 5040));
let EXP_C6: v128 = f32x4.splat(<f32>(1.0 / 720));
let EXP_C5: v128 = f32x4.splat(<f32>(1.0 / 120));
let EXP_C4: v128 = f32x4.splat(<f32>(1.0 / 24));
let EXP_C3: v128 = f32x4.splat(<f32>(1.0 / 6));
let HALF: v128 = f32x4.splat(0.5);
let ONE: v128 = f32x4.splat(1);
let TWO: v128 = f32x4.splat(2);
let EXP_BIAS: v128 = i32x4.splat(127 - 0x4b400000);
let TANH_T9: v128 = f32x4.splat(<f32>(-1382.0 / 155925));
let TANH_T7: v128 = f32x4.splat(<f32>(62.0 / 2835));
let TANH_T5: v128 = f32x4.splat(<f32>(-17.0 / 315));
let TANH_T3: v128 = f32x4.splat(<f32>(2.0 / 15));
let TANH_T1: v128 = f32x4.splat(<f32>(-1.0 / 3));
let TANH_CAP: v128 = f32x4.splat(40);
let TANH_SERIES_BELOW: v128 = f32x4.splat(0.3);
let SIGN_BIT: v128 = i32x4.splat(0x80000000);
let GELU_CUBIC: v128 = f32x4.splat(<f32>0.044715);
let GELU_SCALE: v128 = f32x4.splat(<f32>0.7978845608028654);
let MINUS_TWO: v128 = f32x4.splat(-2);

// e^z in f32x4, z clamped to [-87, 88] (normal f32 results): z = k·ln2 + r with |r| ≤ ln2/2 (ln2 in two parts, Cephes' split),
// e^r by its Taylor series to r^7 (relative error < 2^-24 there), then scaled by 2^k.
@inline function exp4(x: v128): v128 {
  // pmin/pmax (one instruction each; NaN in x stays NaN) instead of min/max (several on x64).
  const z = f32x4.pmax(f32x4.pmin(x, EXP_HIGH), EXP_LOW);
  // k = round-to-even(z·log2 e) by adding 1.5·2^23: kb's low mantissa bits then hold k itself.
  const magic = EXP_ROUND;
  const kb = f32x4.add(f32x4.mul(z, EXP_LOG2E), magic);
  const k = f32x4.sub(kb, magic);
  const r = f32x4.sub(f32x4.sub(z, f32x4.mul(k, EXP_LN2_HIGH)), f32x4.mul(k, EXP_LN2_LOW));
  let p = EXP_C7;
  p = f32x4.add(f32x4.mul(p, r), EXP_C6);
  p = f32x4.add(f32x4.mul(p, r), EXP_C5);
  p = f32x4.add(f32x4.mul(p, r), EXP_C4);
  p = f32x4.add(f32x4.mul(p, r), EXP_C3);
  p = f32x4.add(f32x4.mul(p, r), HALF);
  p = f32x4.add(f32x4.mul(p, r), ONE);
  p = f32x4.add(f32x4.mul(p, r), ONE);
  const twoToK = i32x4.shl(i32x4.add(kb, EXP_BIAS), 23);
  return f32x4.mul(p, twoToK);
}

// tanh in f32x4: an odd Taylor series below |y| = 0.3 (where 1 − 2/(e^2|y| + 1) would cancel),
// above it 1 − 2/(e^2|y| + 1) with the sign of y; e^2|y| is capped at e^40 (tanh is 1 in f32
// long before). NaN stays NaN.
@inline function tanh4(y: v128): v128 {
  const a = f32x4.abs(y);
  const y2 = f32x4.mul(y, y);
  let t = TANH_T9;
  t = f32x4.add(f32x4.mul(t, y2), TANH_T7);
  t = f32x4.add(f32x4.mul(t, y2), TANH_T5);
  t = f32x4.add(f32x4.mul(t, y2), TANH_T3);
  t = f32x4.add(f32x4.mul(t, y2), TANH_T1);
  const series = f32x4.add(f32x4.mul(f32x4.mul(t, y2), y), y);
  const e = exp4(f32x4.pmin(f32x4.add(a, a), TANH_CAP));
  const magnitude = f32x4.sub(ONE, f32x4.div(TWO, f32x4.add(e, ONE)));
  const signed = v128.or(magnitude, v128.and(y, SIGN_BIT));
  return v128.bitselect(series, signed, f32x4.lt(a, TANH_SERIES_BELOW));
}

@inline function tanh1(y: f32): f32 {
  return f32x4.extract_lane(tanh4(f32x4.splat(y)), 0);
}

// gelu_tanh(v) = v/2 · (1 + tanh(u)), u = √(2/π) · (v + 0.044715 v³), computed as the equal
// v / (1 + e^(−2u)): 1 + tanh(u) would cancel for negative v.
@inline function geluTanh4(v: v128): v128 {
  const cubic = f32x4.mul(GELU_CUBIC, f32x4.mul(f32x4.mul(v, v), v));
  const u = f32x4.mul(GELU_SCALE, f32x4.add(v, cubic));
  return f32x4.div(v, f32x4.add(ONE, exp4(f32x4.mul(u, MINUS_TWO))));
}

// out[i] = gelu_tanh(gate[i]) · up[i].
export function gegluTanh(out: usize, gate: usize, up: usize, n: i32): void {
  const end = n & ~3;
  for (let i = 0; i < end; i += 4) {
    const at = <usize>i << 2;
    v128.store(out + at, f32x4.mul(geluTanh4(v128.load(gate + at)), v128.load(up + at)));
  }
  for (let i = end; i < n; i++) {
    const at = <usize>i << 2;
    store<f32>(out + at, f32x4.extract_lane(geluTanh4(f32x4.splat(load<f32>(gate + at))), 0) * load<f32>(up + at));
  }
}

// RMSNorm of seqLen rows of dim floats with the TypeScript reference's arithmetic, so the result is
// the same bit for bit: Σx² in f64 in order, inv = 1 / √(Σx² / dim + eps) in f64, then
// (x · inv) · gain in f64 rounded to f32 (the multiplies four values at a time in f64x2 lanes).
// Rows [from, to) of rmsnormRows, eps (f64) read at epsAt: one thread's share.
export function rmsnormRowsAt(out: usize, x: usize, gain: usize, from: i32, to: i32, dim: i32, epsAt: usize): void {
  const at = (<usize>from * <usize>dim) << 2;
  rmsnormRows(out + at, x + at, gain, to - from, dim, load<f64>(epsAt));
}

export function rmsnormRows(out: usize, x: usize, gain: usize, seqLen: i32, dim: i32, eps: f64): void {
  const end = dim & ~3;
  for (let s = 0; s < seqLen; s++) {
    const row = x + ((<usize>s * <usize>dim) << 2);
    const dst = out + ((<usize>s * <usize>dim) << 2);
    let sumSq: f64 = 0;
    for (let i = 0; i < dim; i++) {
      const v = <f64>load<f32>(row + (<usize>i << 2));
      sumSq += v * v;
    }
    const inv = 1 / Math.sqrt(sumSq / <f64>dim + eps);
    const by = f64x2.splat(inv);
    for (let i = 0; i < end; i += 4) {
      const at = <usize>i << 2;
      const v = v128.load(row + at);
      const g = v128.load(gain + at);
      const low = f64x2.mul(f64x2.mul(f64x2.promote_low_f32x4(v), by), f64x2.promote_low_f32x4(g));
      const high = f64x2.mul(
        f64x2.mul(f64x2.promote_low_f32x4(v128.shuffle<i32>(v, v, 2, 3, 2, 3)), by),
        f64x2.promote_low_f32x4(v128.shuffle<i32>(g, g, 2, 3, 2, 3)),
      );
      v128.store(dst + at, v128.shuffle<i32>(f32x4.demote_f64x2_zero(low), f32x4.demote_f64x2_zero(high), 0, 1, 4, 5));
    }
    for (let i = end; i < dim; i++) {
      const at = <usize>i << 2;
      store<f32>(dst + at, <f32>(<f64>load<f32>(row + at) * inv * <f64>load<f32>(gain + at)));
    }
  }
}

// x[i] = cap · tanh(x[i] / cap), in place.
export function softcapInPlace(x: usize, n: i32, cap: f32): void {
  const c = f32x4.splat(cap);
  const end = n & ~3;
  for (let i = 0; i < end; i += 4) {
    const at = x + (<usize>i << 2);
    v128.store(at, f32x4.mul(c, tanh4(f32x4.div(v128.load(at), c))));
  }
  for (let i = end; i < n; i++) {
    const at = x + (<usize>i << 2);
    store<f32>(at, cap * tanh1(load<f32>(at) / cap));
  }
}

// out[i] += p · v[i] over n floats.
@inline function axpyF32(out: usize, p: f32, v: usize, n: i32): void {
  const pv = f32x4.splat(p);
  const end = n & ~3;
  for (let i = 0; i < end; i += 4) {
    const at = <usize>i << 2;
    v128.store(out + at, madd(pv, v128.load(v + at), v128.load(out + at)));
  }
  for (let i = end; i < n; i++) {
    const at = <usize>i << 2;
    store<f32>(out + at, load<f32>(out + at) + p * load<f32>(v + at));
  }
}

// out[i] += p_k · v_k[i] for k = 0..3 in that order (p_k at ps, v_k at v + k · stride), over n
// floats: axpyF32 four times with one load and store of out, each element's operations unchanged.
@inline function axpy4F32(out: usize, ps: usize, v: usize, stride: usize, n: i32): void {
  const p0 = load<f32>(ps), p1 = load<f32>(ps, 4), p2 = load<f32>(ps, 8), p3 = load<f32>(ps, 12);
  const s0 = f32x4.splat(p0), s1 = f32x4.splat(p1), s2 = f32x4.splat(p2), s3 = f32x4.splat(p3);
  const end = n & ~3;
  for (let i = 0; i < end; i += 4) {
    const at = <usize>i << 2;
    const w = v + at;
    let o = madd(s0, v128.load(w), v128.load(out + at));
    o = madd(s1, v128.load(w + stride), o);
    o = madd(s2, v128.load(w + 2 * stride), o);
    v128.store(out + at, madd(s3, v128.load(w + 3 * stride), o));
  }
  for (let i = end; i < n; i++) {
    const at = <usize>i << 2;
    let o = load<f32>(out + at) + p0 * load<f32>(v + at);
    o += p1 * load<f32>(v + stride + at);
    o += p2 * load<f32>(v + 2 * stride + at);
    store<f32>(out + at, o + p3 * load<f32>(v + 3 * stride + at));
  }
}

// An attention job's parameters, as consecutive 32-bit words at `params` (see attendItems).
const P_OUT = 0;
const P_Q = 4;
const P_PAST_K = 8;
const P_PAST_V = 12;
const P_SCORES = 16;
const P_SEQ_LEN = 20;
const P_START_POS = 24;
const P_P0 = 28;
const P_HEADS = 32;
const P_KV_HEADS = 36;
const P_HEAD_DIM = 40;
const P_SCALE = 44;
const P_SOFTCAP = 48;
const P_WINDOW = 52;
const P_SCORES_STRIDE = 56;
const P_NEW_K = 60;
const P_NEW_V = 64;
const P_CAPACITY = 68;
const P_PAST_OFFSET = 72;

// Attention of seqLen queries (positions startPos..) over keys and values of positions p0..
// startPos+seqLen−1, rows of nKvHeads·headDim floats: an earlier position j in row
// (j − pastOffset) mod capacity of pastK / pastV (a KV cache's ring read in place, or rows copied
// in position order), a new one in row j − startPos of newK / newV. GQA (consecutive query heads
// share a KV head), scale, soft-cap (0: none) before the causal and sliding-window mask (window 0:
// none), softmax in f32, as the TypeScript reference. Work items are (query, KV head) pairs,
// item = kvh · seqLen + (s's place in 0, n−1, 1, n−2, ...); a thread runs items [from, to) with its
// own scores area (scores + thread · scoresStride bytes: nHeads / nKvHeads floats and a key and a
// value row address per visible key). The query heads of one KV head go together, so each key and
// value row is read once per query.
export function attendItems(params: usize, from: i32, to: i32, thread: i32): void {
  const seqLen = load<i32>(params + P_SEQ_LEN);
  const scores = load<u32>(params + P_SCORES) + <usize>thread * load<u32>(params + P_SCORES_STRIDE);
  for (let item = from; item < to; item++) {
    // KV head by KV head (its rows stay in cache), queries in the order 0, n−1, 1, n−2, ...: any run
    // of items mixes short and long causal rows, so threads taking equal runs get equal work.
    const i = item % seqLen;
    attendItem(params, (i & 1) == 0 ? i >> 1 : seqLen - 1 - (i >> 1), item / seqLen, scores);
  }
}

@inline function attendItem(params: usize, s: i32, kvh: i32, scores: usize): void {
  const out = <usize>load<u32>(params + P_OUT);
  const q = <usize>load<u32>(params + P_Q);
  const pastK = <usize>load<u32>(params + P_PAST_K);
  const pastV = <usize>load<u32>(params + P_PAST_V);
  const newK = <usize>load<u32>(params + P_NEW_K);
  const newV = <usize>load<u32>(params + P_NEW_V);
  const capacity = load<i32>(params + P_CAPACITY);
  const startPos = load<i32>(params + P_START_POS);
  const p0 = load<i32>(params + P_P0);
  const nHeads = load<i32>(params + P_HEADS);
  const nKvHeads = load<i32>(params + P_KV_HEADS);
  const headDim = load<i32>(params + P_HEAD_DIM);
  const scale = load<f32>(params + P_SCALE);
  const softcap = load<f32>(params + P_SOFTCAP);
  const window = load<i32>(params + P_WINDOW);
  const group = nHeads / nKvHeads;
  const qWidth = nHeads * headDim;
  const rowBytes = <usize>(nKvHeads * headDim) << 2;
  const pos = startPos + s;
  const first = window > 0 ? max(p0, pos - window + 1) : p0;
  const n = pos - first + 1;
  // The ring row of `first` (when it is an earlier position); later ones follow, wrapping at capacity.
  const firstRing = first < startPos ? (first - load<i32>(params + P_PAST_OFFSET)) % capacity : 0;
  const headScores = <usize>n << 2;
  const kvOffset = <usize>(kvh * headDim) << 2;
  const qRows = q + (<usize>(s * qWidth + kvh * group * headDim) << 2);
  const oRows = out + (<usize>(s * qWidth + kvh * group * headDim) << 2);
  const headBytes = <usize>headDim << 2;
  // Each visible key's and value's row address, in position order (the ring's rows, then the new).
  const vRows = scores + <usize>group * headScores;
  const kRows = vRows + headScores;
  let ring = firstRing;
  for (let j = 0; j < n; j++) {
    const p = first + j;
    const row = p < startPos ? <usize>ring * rowBytes : <usize>(p - startPos) * rowBytes;
    store<u32>(kRows + (<usize>j << 2), <u32>((p < startPos ? pastK : newK) + row + kvOffset));
    store<u32>(vRows + (<usize>j << 2), <u32>((p < startPos ? pastV : newV) + row + kvOffset));
    if (p < startPos && ++ring == capacity) ring = 0;
  }
  let h = 0;
  for (; h + 1 < group; h += 2) {
    keysPair(qRows + <usize>h * headBytes, headBytes, scores + <usize>h * headScores, headScores, kRows, n, headDim, scale);
  }
  if (h < group) keysPair(qRows + <usize>h * headBytes, 0, scores + <usize>h * headScores, 0, kRows, n, headDim, scale);
  for (let g = 0; g < group; g++) {
    const row = scores + <usize>g * headScores;
    if (softcap > 0) softcapInPlace(row, n, softcap);
    // Softmax: the max, then e^(x − max), their sum, and the probabilities.
    let top = f32.NEGATIVE_INFINITY;
    for (let j = 0; j < n; j++) top = max(top, load<f32>(row + (<usize>j << 2)));
    const topV = f32x4.splat(top);
    let sumV = f32x4.splat(0);
    const end = n & ~3;
    for (let j = 0; j < end; j += 4) {
      const at = row + (<usize>j << 2);
      const e = exp4(f32x4.sub(v128.load(at), topV));
      v128.store(at, e);
      sumV = f32x4.add(sumV, e);
    }
    let sum = sum4(sumV);
    for (let j = end; j < n; j++) {
      const at = row + (<usize>j << 2);
      const e = f32x4.extract_lane(exp4(f32x4.splat(load<f32>(at) - top)), 0);
      store<f32>(at, e);
      sum += e;
    }
    const inverse = f32x4.splat(<f32>1 / sum);
    for (let j = 0; j < end; j += 4) {
      const at = row + (<usize>j << 2);
      v128.store(at, f32x4.mul(v128.load(at), inverse));
    }
    for (let j = end; j < n; j++) {
      const at = row + (<usize>j << 2);
      store<f32>(at, load<f32>(at) * f32x4.extract_lane(inverse, 0));
    }
  }
  // out_g = Σ_j p_gj · v_j, j in order for every element as axpyF32 would add them, but with 16
  // dims of two query heads in registers across all j (a row's address from the table below)
  // instead of a load and store of the output per value row.
  const wide = headDim & ~15;
  let g = 0;
  for (; g + 1 < group; g += 2) {
    const o = oRows + <usize>g * headBytes;
    for (let d = 0; d < wide; d += 16) valuesPair(o, scores + <usize>g * headScores, headScores, headBytes, vRows, n, d);
  }
  if (g < group) {
    for (let d = 0; d < wide; d += 16) valuesOne(oRows + <usize>g * headBytes, scores + <usize>g * headScores, vRows, n, d);
  }
  // Dims past the last 16 (heads whose size is no multiple of 16), as axpyF32 does them.
  for (let h = 0; h < group; h++) {
    const o = oRows + <usize>h * headBytes;
    memory.fill(o + (<usize>wide << 2), 0, <usize>(headDim - wide) << 2);
    for (let j = 0; j < n; j++) {
      const pj = load<f32>(scores + <usize>h * headScores + (<usize>j << 2));
      const v = <usize>load<u32>(vRows + (<usize>j << 2));
      const end = headDim & ~3;
      for (let i = wide; i < end; i += 4) {
        const at = <usize>i << 2;
        v128.store(o + at, madd(f32x4.splat(pj), v128.load(v + at), v128.load(o + at)));
      }
      for (let i = end; i < headDim; i++) {
        const at = <usize>i << 2;
        store<f32>(o + at, load<f32>(o + at) + pj * load<f32>(v + at));
      }
    }
  }
}

// Scores q·k_j · scale of two query heads (at qa and qa + qStride; the second's scores at
// sa + sStride; a stride of 0 computes one head twice over, harmlessly) against keys j < n at the
// addresses in kRows: four keys per pass, each key's dot on one accumulator in dim order (then
// its lanes and the dims past a multiple of 4), so a key's score does not depend on its pass.
@inline function keysPair(qa: usize, qStride: usize, sa: usize, sStride: usize, kRows: usize, n: i32, headDim: i32, scale: f32): void {
  const qb = qa + qStride;
  const sb = sa + sStride;
  const end = headDim & ~3;
  let j = 0;
  for (; j + 3 < n; j += 4) {
    const k0 = <usize>load<u32>(kRows + (<usize>j << 2));
    const k1 = <usize>load<u32>(kRows + (<usize>j << 2), 4);
    const k2 = <usize>load<u32>(kRows + (<usize>j << 2), 8);
    const k3 = <usize>load<u32>(kRows + (<usize>j << 2), 12);
    let a0 = f32x4.splat(0), a1 = a0, a2 = a0, a3 = a0;
    let b0 = a0, b1 = a0, b2 = a0, b3 = a0;
    for (let i = 0; i < end; i += 4) {
      const at = <usize>i << 2;
      const x = v128.load(qa + at), y = v128.load(qb + at);
      const w0 = v128.load(k0 + at), w1 = v128.load(k1 + at), w2 = v128.load(k2 + at), w3 = v128.load(k3 + at);
      a0 = madd(x, w0, a0);
      a1 = madd(x, w1, a1);
      a2 = madd(x, w2, a2);
      a3 = madd(x, w3, a3);
      b0 = madd(y, w0, b0);
      b1 = madd(y, w1, b1);
      b2 = madd(y, w2, b2);
      b3 = madd(y, w3, b3);
    }
    const at = <usize>j << 2;
    store<f32>(sa + at, (sum4(a0) + dotTail(qa, k0, end, headDim)) * scale);
    store<f32>(sa + at, (sum4(a1) + dotTail(qa, k1, end, headDim)) * scale, 4);
    store<f32>(sa + at, (sum4(a2) + dotTail(qa, k2, end, headDim)) * scale, 8);
    store<f32>(sa + at, (sum4(a3) + dotTail(qa, k3, end, headDim)) * scale, 12);
    store<f32>(sb + at, (sum4(b0) + dotTail(qb, k0, end, headDim)) * scale);
    store<f32>(sb + at, (sum4(b1) + dotTail(qb, k1, end, headDim)) * scale, 4);
    store<f32>(sb + at, (sum4(b2) + dotTail(qb, k2, end, headDim)) * scale, 8);
    store<f32>(sb + at, (sum4(b3) + dotTail(qb, k3, end, headDim)) * scale, 12);
  }
  for (; j < n; j++) {
    const k = <usize>load<u32>(kRows + (<usize>j << 2));
    let a = f32x4.splat(0), b = a;
    for (let i = 0; i < end; i += 4) {
      const at = <usize>i << 2;
      const w = v128.load(k + at);
      a = madd(v128.load(qa + at), w, a);
      b = madd(v128.load(qb + at), w, b);
    }
    store<f32>(sa + (<usize>j << 2), (sum4(a) + dotTail(qa, k, end, headDim)) * scale);
    store<f32>(sb + (<usize>j << 2), (sum4(b) + dotTail(qb, k, end, headDim)) * scale);
  }
}

// Σ a[i]·b[i] for i in [from, n): a dot product's last dims.
@inline function dotTail(a: usize, b: usize, from: i32, n: i32): f32 {
  let total: f32 = 0;
  for (let i = from; i < n; i++) total += load<f32>(a + (<usize>i << 2)) * load<f32>(b + (<usize>i << 2));
  return total;
}

// Dims d..d + 15 of Σ_j p_j · v_j for two query heads (probabilities at ps and ps + headScores,
// outputs at o and o + headBytes), value row j at the address in vRows[j].
@inline function valuesPair(o: usize, ps: usize, headScores: usize, headBytes: usize, vRows: usize, n: i32, d: i32): void {
  const at = <usize>d << 2;
  let a0 = f32x4.splat(0), a1 = a0, a2 = a0, a3 = a0;
  let b0 = a0, b1 = a0, b2 = a0, b3 = a0;
  for (let j = 0; j < n; j++) {
    const v = <usize>load<u32>(vRows + (<usize>j << 2)) + at;
    const p = v128.load32_splat(ps + (<usize>j << 2));
    const q = v128.load32_splat(ps + headScores + (<usize>j << 2));
    const v0 = v128.load(v), v1 = v128.load(v, 16), v2 = v128.load(v, 32), v3 = v128.load(v, 48);
    a0 = madd(p, v0, a0);
    a1 = madd(p, v1, a1);
    a2 = madd(p, v2, a2);
    a3 = madd(p, v3, a3);
    b0 = madd(q, v0, b0);
    b1 = madd(q, v1, b1);
    b2 = madd(q, v2, b2);
    b3 = madd(q, v3, b3);
  }
  v128.store(o + at, a0);
  v128.store(o + at, a1, 16);
  v128.store(o + at, a2, 32);
  v128.store(o + at, a3, 48);
  v128.store(o + headBytes + at, b0);
  v128.store(o + headBytes + at, b1, 16);
  v128.store(o + headBytes + at, b2, 32);
  v128.store(o + headBytes + at, b3, 48);
}

// valuesPair for one query head.
@inline function valuesOne(o: usize, ps: usize, vRows: usize, n: i32, d: i32): void {
  const at = <usize>d << 2;
  let a0 = f32x4.splat(0), a1 = a0, a2 = a0, a3 = a0;
  for (let j = 0; j < n; j++) {
    const v = <usize>load<u32>(vRows + (<usize>j << 2)) + at;
    const p = v128.load32_splat(ps + (<usize>j << 2));
    a0 = madd(p, v128.load(v), a0);
    a1 = madd(p, v128.load(v, 16), a1);
    a2 = madd(p, v128.load(v, 32), a2);
    a3 = madd(p, v128.load(v, 48), a3);
  }
  v128.store(o + at, a0);
  v128.store(o + at, a1, 16);
  v128.store(o + at, a2, 32);
  v128.store(o + at, a3, 48);
}

// f32 → f16 bits, round to nearest even (as src/weights/dtype.ts f32ToF16, which the TypeScript
// quantizers use: the scales must come out bit for bit the same).
@inline function f32ToF16Bits(value: f32): u32 {
  const x = reinterpret<u32>(value);
  const sign = (x >>> 16) & 0x8000;
  const exponent = <i32>((x >>> 23) & 0xff);
  let mantissa = x & 0x7fffff;
  if (exponent == 0xff) return sign | 0x7c00 | (mantissa ? 0x200 : 0);
  const e = exponent - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mantissa |= 0x800000;
    const shift = <u32>(14 - e);
    const half: u32 = 1 << (shift - 1);
    let rounded = mantissa >>> shift;
    const rest = mantissa & ((1 << shift) - 1);
    if (rest > half || (rest == half && (rounded & 1) != 0)) rounded++;
    return sign | rounded;
  }
  let rounded = mantissa >>> 13;
  const rest = mantissa & 0x1fff;
  if (rest > 0x1000 || (rest == 0x1000 && (rounded & 1) != 0)) {
    rounded++;
    if (rounded == 0x400) return sign | ((<u32>e + 1) << 10);
  }
  return sign | (<u32>e << 10) | rounded;
}

// An integral f64 as i32; NaN and ±∞ (a broken weight) give 0, as JavaScript's `| 0` does in the
// TypeScript quantizers, instead of trapping.
@inline function toInt(v: f64): i32 {
  return isFinite<f64>(v) ? <i32>v : 0;
}

// Value i of a source row: f32 (T = f32), bf16 (T = u16) or f16 (T = i16), as f64.
@inline function sourceValue<T>(row: usize, i: i32): f64 {
  return <f64>loadW1<T>(row + (<usize>i) * sizeof<T>());
}

// Quantizes `rows` rows of `cols` values (a multiple of 32) at src, of type f32 (type 0), bf16 (1)
// or f16 (2), into row-major Q8_0 (q8 != 0) or Q4_0 blocks at dst, computing exactly as
// src/weights/q8_0.ts and q4_0.ts do (in f64, then the scale rounded to f32 and f16), so a matrix
// quantized here equals one quantized there.
export function quantizeRows(dst: usize, src: usize, rows: i32, cols: i32, type: i32, q8: i32): void {
  if (type == 0) quantizeRowsOf<f32>(dst, src, rows, cols, q8);
  else if (type == 1) quantizeRowsOf<u16>(dst, src, rows, cols, q8);
  else quantizeRowsOf<i16>(dst, src, rows, cols, q8);
}

// Four source values as f32x4, exactly as the TypeScript widening does (f16 Inf and NaN kept).
@inline function widenExact4<T>(ptr: usize): v128 {
  if (sizeof<T>() == 4) return v128.load(ptr);
  const h = v128.load16x4_u(ptr);
  if (!isSigned<T>()) return i32x4.shl(h, 16);
  const special = v128.or(i32x4.shl(v128.and(h, i32x4.splat(0x83ff)), 13), i32x4.splat(0x7f800000));
  const signed = v128.or(v128.and(special, i32x4.splat(0x7fffffff)), i32x4.shl(v128.and(h, i32x4.splat(0x8000)), 16));
  return v128.bitselect(signed, halvesToF32(h), i32x4.eq(v128.and(h, i32x4.splat(0x7c00)), i32x4.splat(0x7c00)));
}

// round half away from zero of f64x2 lanes, as i32 in the low two lanes (NaN → 0).
@inline function roundHalfAway2(m: v128): v128 {
  const magnitude = f64x2.floor(f64x2.add(f64x2.abs(m), f64x2.splat(0.5)));
  const rounded = v128.bitselect(f64x2.neg(magnitude), magnitude, f64x2.lt(m, f64x2.splat(0)));
  return i32x4.trunc_sat_f64x2_s_zero(rounded);
}

// Four f32 values times an f64 factor, rounded half away from zero, as i32x4 (the f64 products
// the TypeScript quantizer computes).
@inline function scaleRound4(v: v128, inverse: v128): v128 {
  const low = roundHalfAway2(f64x2.mul(f64x2.promote_low_f32x4(v), inverse));
  const high = roundHalfAway2(f64x2.mul(f64x2.promote_low_f32x4(v128.shuffle<i32>(v, v, 2, 3, 0, 1)), inverse));
  return v128.shuffle<i32>(low, high, 0, 1, 4, 5);
}

// One Q8_0 block of 32 source values at src, in SIMD with the TypeScript quantizer's arithmetic:
// amax in f32 (exact), d = amax / 127 and the quants in f64.
@inline function quantizeQ8_0Block<T>(out: usize, src: usize): void {
  const step = <usize>4 * sizeof<T>();
  let top = f32x4.splat(0);
  for (let k: usize = 0; k < 8; k++) top = f32x4.max(top, f32x4.abs(widenExact4<T>(src + k * step)));
  const pair = max(f32x4.extract_lane(top, 0), f32x4.extract_lane(top, 1));
  const amax = max(pair, max(f32x4.extract_lane(top, 2), f32x4.extract_lane(top, 3)));
  const d = <f64>amax / 127;
  const inverse = f64x2.splat(d == 0 ? 0 : 1 / d);
  store<u16>(out, <u16>f32ToF16Bits(<f32>d));
  for (let k: usize = 0; k < 8; k += 4) {
    const q0 = scaleRound4(widenExact4<T>(src + k * step), inverse);
    const q1 = scaleRound4(widenExact4<T>(src + (k + 1) * step), inverse);
    const q2 = scaleRound4(widenExact4<T>(src + (k + 2) * step), inverse);
    const q3 = scaleRound4(widenExact4<T>(src + (k + 3) * step), inverse);
    const bytes = i8x16.narrow_i16x8_s(i16x8.narrow_i32x4_s(q0, q1), i16x8.narrow_i32x4_s(q2, q3));
    v128.store(out + <usize>Q8_0_QUANTS_OFFSET + k * 4, bytes);
  }
}

@inline function quantizeRowsOf<T>(dst: usize, src: usize, rows: i32, cols: i32, q8: i32): void {
  const blocks = cols / QK;
  for (let r = 0; r < rows; r++) {
    const row = src + <usize>r * <usize>cols * sizeof<T>();
    for (let b = 0; b < blocks; b++) {
      const first = b * QK;
      if (q8) {
        quantizeQ8_0Block<T>(dst + (<usize>r * <usize>blocks + <usize>b) * <usize>Q8_0_BLOCK_BYTES, row + <usize>first * sizeof<T>());
      } else {
        const out = dst + (<usize>r * <usize>blocks + <usize>b) * <usize>Q4_0_BLOCK_BYTES;
        let top: f64 = 0;
        for (let i = 0; i < QK; i++) {
          const v = sourceValue<T>(row, first + i);
          if (abs(v) > abs(top)) top = v;
        }
        const d = top / -8;
        const inverse = d == 0 ? 0 : 1 / d;
        store<u16>(out, <u16>f32ToF16Bits(<f32>d));
        for (let j = 0; j < 16; j++) {
          const low = toInt(min<f64>(15, Math.trunc(sourceValue<T>(row, first + j) * inverse + 8.5)));
          const high = toInt(min<f64>(15, Math.trunc(sourceValue<T>(row, first + 16 + j) * inverse + 8.5)));
          store<u8>(out + <usize>Q4_0_QUANTS_OFFSET + <usize>j, <u8>((low & 0xf) | ((high & 0xf) << 4)));
        }
      }
    }
  }
}

// Block h of token s of an RG-LRU gate projection: out chunk h = bias[h] + x chunk h · w[h], with
// w placed transposed, [nBlocks, out, in] (recurrence in src/backend/wasm/index.ts): four outputs
// per pass, each a dot product over its contiguous row in two f32x4 partial sums, so the weights
// stream in order and the sums stay in registers.
function gateBlock(out: usize, x: usize, w: usize, bias: usize, s: i32, h: i32, nBlocks: i32, blockWidth: i32): void {
  const width = nBlocks * blockWidth;
  const rowBytes = <usize>blockWidth << 2;
  const o = out + (<usize>(s * width + h * blockWidth) << 2);
  const xs = x + (<usize>(s * width + h * blockWidth) << 2);
  const wh = w + <usize>h * <usize>blockWidth * rowBytes;
  const b = bias + <usize>h * rowBytes;
  const vecEnd = blockWidth & ~7;
  let j = 0;
  for (; j + 3 < blockWidth; j += 4) {
    const r0 = wh + <usize>j * rowBytes, r1 = r0 + rowBytes, r2 = r1 + rowBytes, r3 = r2 + rowBytes;
    let a0 = f32x4.splat(0), b0 = f32x4.splat(0), a1 = f32x4.splat(0), b1 = f32x4.splat(0);
    let a2 = f32x4.splat(0), b2 = f32x4.splat(0), a3 = f32x4.splat(0), b3 = f32x4.splat(0);
    let i = 0;
    for (; i < vecEnd; i += 8) {
      const at = <usize>i << 2;
      const x0 = v128.load(xs + at), x1 = v128.load(xs + at, 16);
      a0 = madd(x0, v128.load(r0 + at), a0);
      b0 = madd(x1, v128.load(r0 + at, 16), b0);
      a1 = madd(x0, v128.load(r1 + at), a1);
      b1 = madd(x1, v128.load(r1 + at, 16), b1);
      a2 = madd(x0, v128.load(r2 + at), a2);
      b2 = madd(x1, v128.load(r2 + at, 16), b2);
      a3 = madd(x0, v128.load(r3 + at), a3);
      b3 = madd(x1, v128.load(r3 + at, 16), b3);
    }
    let t0 = sum4(f32x4.add(a0, b0)), t1 = sum4(f32x4.add(a1, b1)), t2 = sum4(f32x4.add(a2, b2)), t3 = sum4(f32x4.add(a3, b3));
    for (; i < blockWidth; i++) {
      const at = <usize>i << 2;
      const xi = load<f32>(xs + at);
      t0 += xi * load<f32>(r0 + at);
      t1 += xi * load<f32>(r1 + at);
      t2 += xi * load<f32>(r2 + at);
      t3 += xi * load<f32>(r3 + at);
    }
    const bj = b + (<usize>j << 2), oj = o + (<usize>j << 2);
    store<f32>(oj, load<f32>(bj) + t0);
    store<f32>(oj, load<f32>(bj, 4) + t1, 4);
    store<f32>(oj, load<f32>(bj, 8) + t2, 8);
    store<f32>(oj, load<f32>(bj, 12) + t3, 12);
  }
  for (; j < blockWidth; j++) {
    const r0 = wh + <usize>j * rowBytes;
    let t: f32 = 0;
    for (let i = 0; i < blockWidth; i++) t += load<f32>(xs + (<usize>i << 2)) * load<f32>(r0 + (<usize>i << 2));
    store<f32>(o + (<usize>j << 2), load<f32>(b + (<usize>j << 2)) + t);
  }
}

// The recurrent branch between a recurrent block's input projections and its output projection
// (Kernels.recurrence; RECURRENTGEMMA.md §4), one gate block of channels per work item: the
// block's channels of Conv1D(x), its input and recurrent gates (block-diagonal, so they read only
// those channels), the RG-LRU scan over them, and out = gelu_tanh(y) · h. Blocks share nothing, so
// a thread runs items [from, to) alone. Parameters at `params`, 32-bit words: out, x,
// y, conv, inputGate, recurrentGate (out: seqLen · width floats each), convWeight, convBias,
// history, historyScratch, inputGateWeight, inputGateBias, recurrentGateWeight,
// recurrentGateBias, softplusLambda, state, seqLen, width, nBlocks, convWidth, startPos.
export function recurrenceItems(params: usize, from: i32, to: i32, thread: i32): void {
  const out = <usize>load<u32>(params);
  const x = <usize>load<u32>(params, 4);
  const y = <usize>load<u32>(params, 8);
  const conv = <usize>load<u32>(params, 12);
  const inputGate = <usize>load<u32>(params, 16);
  const recurrentGate = <usize>load<u32>(params, 20);
  const convWeight = <usize>load<u32>(params, 24);
  const convBias = <usize>load<u32>(params, 28);
  const history = <usize>load<u32>(params, 32);
  const historyScratch = <usize>load<u32>(params, 36);
  const inputGateWeight = <usize>load<u32>(params, 40);
  const inputGateBias = <usize>load<u32>(params, 44);
  const recurrentGateWeight = <usize>load<u32>(params, 48);
  const recurrentGateBias = <usize>load<u32>(params, 52);
  const softplusLambda = <usize>load<u32>(params, 56);
  const state = <usize>load<u32>(params, 60);
  const seqLen = load<i32>(params, 64);
  const width = load<i32>(params, 68);
  const nBlocks = load<i32>(params, 72);
  const convWidth = load<i32>(params, 76);
  const startPos = load<i32>(params, 80);
  const blockWidth = width / nBlocks;
  for (let h = from; h < to; h++) {
    const c0 = h * blockWidth;
    const c1 = c0 + blockWidth;
    conv1dChannels(conv, x, convWeight, convBias, history, seqLen, width, convWidth, historyScratch, c0, c1);
    for (let s = 0; s < seqLen; s++) {
      gateBlock(inputGate, conv, inputGateWeight, inputGateBias, s, h, nBlocks, blockWidth);
      gateBlock(recurrentGate, conv, recurrentGateWeight, recurrentGateBias, s, h, nBlocks, blockWidth);
    }
    rgLruScanChannels(out, conv, inputGate, recurrentGate, softplusLambda, state, seqLen, width, startPos, c0, c1);
    for (let s = 0; s < seqLen; s++) {
      const at = <usize>(s * width + c0) << 2;
      gegluTanh(out + at, y + at, out + at, blockWidth);
    }
  }
}
