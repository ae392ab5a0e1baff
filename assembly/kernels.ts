// Every WebAssembly SIMD kernel of the wasm backend (compiled with asc --enable simd): matmuls
// out[s * outStride + r] = Σ_c x[s * cols + c] · w[r * cols + c], y = x Wᵀ with W in PyTorch
// [out, in] layout, for weights in f32, bf16 and f16 (widened in registers) and in Q8_0 / Q4_0
// blocks (against activations quantized to int8 blocks by quantizeActivations); and the
// row-streaming kernel the bandwidth benchmark uses. outStride lets a thread compute a slice of
// rows (w and out offset to it); four weight rows per pass share every load of x.
import {
  ACTIVATION_BLOCK_BYTES,
  ACTIVATION_QUANTS_OFFSET,
  Q4_0_BLOCK_BYTES,
  Q4_0_QUANTS_OFFSET,
  Q8_0_BLOCK_BYTES,
  Q8_0_QUANTS_OFFSET,
  QK,
} from "./block-layout";

// RELAXED is set by the build (`--use RELAXED=0|1`): 1 compiles the relaxed-SIMD int8 dot products
// (kernels-relaxed*.wasm), 0 the plain SIMD fallback (kernels*.wasm).

// Exported as globals of the module, so a test can check them against the TypeScript layouts.
export {
  ACTIVATION_BLOCK_BYTES,
  ACTIVATION_QUANTS_OFFSET,
  Q4_0_BLOCK_BYTES,
  Q4_0_QUANTS_OFFSET,
  Q8_0_BLOCK_BYTES,
  Q8_0_QUANTS_OFFSET,
  QK,
} from "./block-layout";

@inline function sum4(v: v128): f32 {
  return f32x4.extract_lane(v, 0) + f32x4.extract_lane(v, 1) + f32x4.extract_lane(v, 2) + f32x4.extract_lane(v, 3);
}

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
  const h = v128.load16x4_u(ptr);
  const sign = i32x4.shl(v128.and(h, i32x4.splat(0x8000)), 16);
  const magnitude = f32x4.mul(i32x4.shl(v128.and(h, i32x4.splat(0x7fff)), 13), f32x4.splat(5.192296858534828e33));
  return v128.or(magnitude, sign);
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
      let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
      for (let c = 0; c < vecEnd; c += 4) {
        const xv = v128.load(xs + (<usize>c << 2));
        const off = <usize>c * size;
        a0 = f32x4.add(a0, f32x4.mul(xv, loadW4<T>(w0 + off)));
        a1 = f32x4.add(a1, f32x4.mul(xv, loadW4<T>(w1 + off)));
        a2 = f32x4.add(a2, f32x4.mul(xv, loadW4<T>(w2 + off)));
        a3 = f32x4.add(a3, f32x4.mul(xv, loadW4<T>(w3 + off)));
      }
      let t0 = sum4(a0), t1 = sum4(a1), t2 = sum4(a2), t3 = sum4(a3);
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

// f16 bits → f32 (scales of Q8_0 blocks, f16 weights' tails).
@inline function f16ToF32(h: u32): f32 {
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

// Activations are quantized per QK values too, into blocks of an f32 scale then QK int8
// (round half away from zero, computed in f32), so Q8_0 rows can be dotted in integers.
export function quantizeActivations(x: usize, out: usize, cols: i32, seqLen: i32): void {
  const blocks = cols / QK;
  for (let s = 0; s < seqLen; s++) {
    for (let b = 0; b < blocks; b++) {
      const src = x + ((<usize>s * <usize>cols + <usize>b * <usize>QK) << 2);
      const dst = out + (<usize>s * <usize>blocks + <usize>b) * <usize>ACTIVATION_BLOCK_BYTES;
      let amax: f32 = 0;
      for (let i = 0; i < QK; i++) amax = max(amax, abs(load<f32>(src + (<usize>i << 2))));
      const d: f32 = amax / 127;
      const inverse: f32 = d == 0 ? 0 : <f32>1 / d;
      store<f32>(dst, d);
      for (let i = 0; i < QK; i++) {
        const v: f32 = load<f32>(src + (<usize>i << 2)) * inverse;
        const q: f32 = Mathf.floor(abs(v) + 0.5);
        store<i8>(dst + <usize>ACTIVATION_QUANTS_OFFSET + <usize>i, <i8>(<i32>(v < 0 ? -q : q)));
      }
    }
  }
}

// Σ of 16 int8 products, as four i32 lanes.
@inline function dot16(a: v128, b: v128): v128 {
  return i32x4.add(
    i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(a), i16x8.extend_low_i8x16_s(b)),
    i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(a), i16x8.extend_high_i8x16_s(b)),
  );
}

// The 32 weight values of a block as two i8x16 halves (values 0..15 and 16..31), chosen at compile
// time: T = i8 for Q8_0 (int8 as stored), T = u8 for Q4_0 (nibbles; low nibbles are values 0..15,
// high nibbles 16..31, value = nibble − 8).
@inline function weightsLow<T>(wb: usize): v128 {
  if (isSigned<T>()) return v128.load(wb + <usize>Q8_0_QUANTS_OFFSET);
  return i8x16.sub(v128.and(v128.load(wb + <usize>Q4_0_QUANTS_OFFSET), i8x16.splat(0x0f)), i8x16.splat(8));
}

@inline function weightsHigh<T>(wb: usize): v128 {
  if (isSigned<T>()) return v128.load(wb + <usize>Q8_0_QUANTS_OFFSET + 16);
  return i8x16.sub(i8x16.shr_u(v128.load(wb + <usize>Q4_0_QUANTS_OFFSET), 4), i8x16.splat(8));
}

@inline function blockBytes<T>(): usize {
  return isSigned<T>() ? <usize>Q8_0_BLOCK_BYTES : <usize>Q4_0_BLOCK_BYTES;
}

// Σ q_w·q_x of one weight block against one activation block, as four i32 lanes. The activation
// halves come in as x0/x1 (int8 in -127..127) and, for relaxed SIMD, split as x = pos − neg with
// pos, neg in 0..127: the relaxed dot's second operand is only exact without its sign bit.
// Relaxed SIMD (RELAXED=1 builds): 16 products per instruction instead of 8 after widening.
@inline function blockSum<T>(wb: usize, x0: v128, x1: v128, pos0: v128, neg0: v128, pos1: v128, neg1: v128): v128 {
  const w0 = weightsLow<T>(wb);
  const w1 = weightsHigh<T>(wb);
  if (RELAXED) {
    // Each dot on its own, then added: feeding one relaxed dot into another's accumulator operand
    // computed the wrong half on Node 20's V8 (features.ts); kept apart, the code is plain.
    const zero = i32x4.splat(0);
    const pos = i32x4.add(i32x4.relaxed_dot_i8x16_i7x16_add_s(w0, pos0, zero), i32x4.relaxed_dot_i8x16_i7x16_add_s(w1, pos1, zero));
    const neg = i32x4.add(i32x4.relaxed_dot_i8x16_i7x16_add_s(w0, neg0, zero), i32x4.relaxed_dot_i8x16_i7x16_add_s(w1, neg1, zero));
    return i32x4.sub(pos, neg);
  }
  return i32x4.add(dot16(w0, x0), dot16(w1, x1));
}

// One block's contribution as f32x4 lanes: the integer sum scaled by d_w · d_x.
@inline function blockDot<T>(wb: usize, xScale: f32, x0: v128, x1: v128, pos0: v128, neg0: v128, pos1: v128, neg1: v128): v128 {
  const isum = blockSum<T>(wb, x0, x1, pos0, neg0, pos1, neg1);
  return f32x4.mul(f32x4.convert_i32x4_s(isum), f32x4.splat(f16ToF32(<u32>load<u16>(wb)) * xScale));
}

// Quantized weights (T = i8: Q8_0, T = u8: Q4_0) against activations quantized by
// quantizeActivations; cols is a multiple of QK. Four rows share each activation block's loads
// (and, for relaxed SIMD, its split into positive and negative parts).
@inline function matmulBlocks<T>(out: usize, xq: usize, w: usize, rows: i32, cols: i32, seqLen: i32, outStride: i32): void {
  const blocks = cols / QK;
  const size = blockBytes<T>();
  const rowBytes = <usize>blocks * size;
  const zero = i8x16.splat(0);
  let r = 0;
  for (; r < rows; r += 4) {
    // The last group may have fewer than four rows: its missing rows repeat the last real one.
    const w0 = w + <usize>r * rowBytes;
    const w1 = w + <usize>min(r + 1, rows - 1) * rowBytes;
    const w2 = w + <usize>min(r + 2, rows - 1) * rowBytes;
    const w3 = w + <usize>min(r + 3, rows - 1) * rowBytes;
    for (let s = 0; s < seqLen; s++) {
      const xs = xq + <usize>s * <usize>blocks * <usize>ACTIVATION_BLOCK_BYTES;
      let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
      for (let b = 0; b < blocks; b++) {
        const xb = xs + <usize>b * <usize>ACTIVATION_BLOCK_BYTES;
        const xScale = load<f32>(xb);
        const x0 = v128.load(xb + <usize>ACTIVATION_QUANTS_OFFSET);
        const x1 = v128.load(xb + <usize>ACTIVATION_QUANTS_OFFSET + 16);
        const pos0 = i8x16.max_s(x0, zero);
        const neg0 = i8x16.max_s(i8x16.neg(x0), zero);
        const pos1 = i8x16.max_s(x1, zero);
        const neg1 = i8x16.max_s(i8x16.neg(x1), zero);
        const off = <usize>b * size;
        a0 = f32x4.add(a0, blockDot<T>(w0 + off, xScale, x0, x1, pos0, neg0, pos1, neg1));
        a1 = f32x4.add(a1, blockDot<T>(w1 + off, xScale, x0, x1, pos0, neg0, pos1, neg1));
        a2 = f32x4.add(a2, blockDot<T>(w2 + off, xScale, x0, x1, pos0, neg0, pos1, neg1));
        a3 = f32x4.add(a3, blockDot<T>(w3 + off, xScale, x0, x1, pos0, neg0, pos1, neg1));
      }
      const o = out + ((<usize>s * <usize>outStride + <usize>r) << 2);
      store<f32>(o, sum4(a0));
      if (r + 1 < rows) store<f32>(o, sum4(a1), 4);
      if (r + 2 < rows) store<f32>(o, sum4(a2), 8);
      if (r + 3 < rows) store<f32>(o, sum4(a3), 12);
    }
  }
}

export function matmulQ8_0(out: usize, xq: usize, w: usize, rows: i32, cols: i32, seqLen: i32, outStride: i32): void {
  matmulBlocks<i8>(out, xq, w, rows, cols, seqLen, outStride);
}

export function matmulQ4_0(out: usize, xq: usize, w: usize, rows: i32, cols: i32, seqLen: i32, outStride: i32): void {
  matmulBlocks<u8>(out, xq, w, rows, cols, seqLen, outStride);
}
