// WebAssembly SIMD matmul kernels (compiled with asc --enable simd).
// out[s * rows + r] = Σ_c x[s * cols + c] · w[r * cols + c]: y = x Wᵀ with W in PyTorch [out, in]
// layout. Weights are f32 or bf16 (widened in registers: bf16 bits << 16 are an f32).
// Four weight rows per pass share every load of x.

@inline function sum4(v: v128): f32 {
  return f32x4.extract_lane(v, 0) + f32x4.extract_lane(v, 1) + f32x4.extract_lane(v, 2) + f32x4.extract_lane(v, 3);
}

@inline function loadBf16x4(ptr: usize): v128 {
  return i32x4.shl(v128.load16x4_u(ptr), 16);
}

@inline function bf16At(ptr: usize): f32 {
  return reinterpret<f32>((<u32>load<u16>(ptr)) << 16);
}

export function matmulF32(out: usize, x: usize, w: usize, rows: i32, cols: i32, seqLen: i32): void {
  const vecEnd = cols & ~3;
  const rowBytes = <usize>cols << 2;
  let r = 0;
  for (; r + 3 < rows; r += 4) {
    const w0 = w + <usize>r * rowBytes;
    const w1 = w0 + rowBytes;
    const w2 = w1 + rowBytes;
    const w3 = w2 + rowBytes;
    for (let s = 0; s < seqLen; s++) {
      const xs = x + <usize>s * rowBytes;
      let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
      for (let c = 0; c < vecEnd; c += 4) {
        const off = <usize>c << 2;
        const xv = v128.load(xs + off);
        a0 = f32x4.add(a0, f32x4.mul(xv, v128.load(w0 + off)));
        a1 = f32x4.add(a1, f32x4.mul(xv, v128.load(w1 + off)));
        a2 = f32x4.add(a2, f32x4.mul(xv, v128.load(w2 + off)));
        a3 = f32x4.add(a3, f32x4.mul(xv, v128.load(w3 + off)));
      }
      let t0 = sum4(a0), t1 = sum4(a1), t2 = sum4(a2), t3 = sum4(a3);
      for (let c = vecEnd; c < cols; c++) {
        const off = <usize>c << 2;
        const xv = load<f32>(xs + off);
        t0 += xv * load<f32>(w0 + off);
        t1 += xv * load<f32>(w1 + off);
        t2 += xv * load<f32>(w2 + off);
        t3 += xv * load<f32>(w3 + off);
      }
      const o = out + ((<usize>s * <usize>rows + <usize>r) << 2);
      store<f32>(o, t0);
      store<f32>(o, t1, 4);
      store<f32>(o, t2, 8);
      store<f32>(o, t3, 12);
    }
  }
  for (; r < rows; r++) {
    const wr = w + <usize>r * rowBytes;
    for (let s = 0; s < seqLen; s++) {
      const xs = x + <usize>s * rowBytes;
      let a = f32x4.splat(0);
      for (let c = 0; c < vecEnd; c += 4) a = f32x4.add(a, f32x4.mul(v128.load(xs + (<usize>c << 2)), v128.load(wr + (<usize>c << 2))));
      let t = sum4(a);
      for (let c = vecEnd; c < cols; c++) t += load<f32>(xs + (<usize>c << 2)) * load<f32>(wr + (<usize>c << 2));
      store<f32>(out + ((<usize>s * <usize>rows + <usize>r) << 2), t);
    }
  }
}

export function matmulBf16(out: usize, x: usize, w: usize, rows: i32, cols: i32, seqLen: i32): void {
  const vecEnd = cols & ~3;
  const xRowBytes = <usize>cols << 2;
  const wRowBytes = <usize>cols << 1;
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
        const off = <usize>c << 1;
        a0 = f32x4.add(a0, f32x4.mul(xv, loadBf16x4(w0 + off)));
        a1 = f32x4.add(a1, f32x4.mul(xv, loadBf16x4(w1 + off)));
        a2 = f32x4.add(a2, f32x4.mul(xv, loadBf16x4(w2 + off)));
        a3 = f32x4.add(a3, f32x4.mul(xv, loadBf16x4(w3 + off)));
      }
      let t0 = sum4(a0), t1 = sum4(a1), t2 = sum4(a2), t3 = sum4(a3);
      for (let c = vecEnd; c < cols; c++) {
        const xv = load<f32>(xs + (<usize>c << 2));
        const off = <usize>c << 1;
        t0 += xv * bf16At(w0 + off);
        t1 += xv * bf16At(w1 + off);
        t2 += xv * bf16At(w2 + off);
        t3 += xv * bf16At(w3 + off);
      }
      const o = out + ((<usize>s * <usize>rows + <usize>r) << 2);
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
      for (let c = 0; c < vecEnd; c += 4) a = f32x4.add(a, f32x4.mul(v128.load(xs + (<usize>c << 2)), loadBf16x4(wr + (<usize>c << 1))));
      let t = sum4(a);
      for (let c = vecEnd; c < cols; c++) t += load<f32>(xs + (<usize>c << 2)) * bf16At(wr + (<usize>c << 1));
      store<f32>(out + ((<usize>s * <usize>rows + <usize>r) << 2), t);
    }
  }
}
