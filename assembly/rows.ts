// Row-wise kernels whose TypeScript references compute in f64 or plain f32 adds: RoPE, residual and
// bias adds, RecurrentGemma's causal depthwise convolution and RG-LRU scan. Each repeats the
// reference's arithmetic step for step (f64 lanes where it uses JavaScript numbers), so the
// results are the same bit for bit, but for the scan's exp (AssemblyScript's, not V8's).

// Two f32 at p as f64x2.
@inline function load2(p: usize): v128 {
  return f64x2.promote_low_f32x4(v128.load64_zero(p));
}

// f64x2 rounded to two f32 stored at p.
@inline function store2(p: usize, v: v128): void {
  v128.store64_lane(p, f32x4.demote_f64x2_zero(v), 0);
}

// NeoX rotation in place of seqLen rows of nHeads heads of headDim floats: pairs (j, j + half) of
// each head, j < half, by the angles of table row s (cos at cos + s·half, sin likewise, f32):
// (x1·c − x2·s, x2·c + x1·s) in f64, rounded to f32, as src/backend/js/elementwise.ts rope.
export function ropeRows(x: usize, cos: usize, sin: usize, seqLen: i32, nHeads: i32, headDim: i32, half: i32): void {
  const pairs = half & ~1;
  for (let s = 0; s < seqLen; s++) {
    const c0 = cos + ((<usize>s * <usize>half) << 2);
    const s0 = sin + ((<usize>s * <usize>half) << 2);
    for (let h = 0; h < nHeads; h++) {
      const head = x + ((<usize>(s * nHeads + h) * <usize>headDim) << 2);
      const second = head + (<usize>half << 2);
      for (let j = 0; j < pairs; j += 2) {
        const at = <usize>j << 2;
        const x1 = load2(head + at), x2 = load2(second + at);
        const c = load2(c0 + at), n = load2(s0 + at);
        store2(head + at, f64x2.sub(f64x2.mul(x1, c), f64x2.mul(x2, n)));
        store2(second + at, f64x2.add(f64x2.mul(x2, c), f64x2.mul(x1, n)));
      }
      if (pairs < half) {
        const at = <usize>pairs << 2;
        const x1 = <f64>load<f32>(head + at), x2 = <f64>load<f32>(second + at);
        const c = <f64>load<f32>(c0 + at), n = <f64>load<f32>(s0 + at);
        store<f32>(head + at, <f32>(x1 * c - x2 * n));
        store<f32>(second + at, <f32>(x2 * c + x1 * n));
      }
    }
  }
}

// out[i] += x[i] over n floats.
export function addRows(out: usize, x: usize, n: i32): void {
  const end = n & ~3;
  for (let i = 0; i < end; i += 4) {
    const at = <usize>i << 2;
    v128.store(out + at, f32x4.add(v128.load(out + at), v128.load(x + at)));
  }
  for (let i = end; i < n; i++) {
    const at = <usize>i << 2;
    store<f32>(out + at, load<f32>(out + at) + load<f32>(x + at));
  }
}

// x[s, i] += bias[i] for seqLen rows of dim floats.
export function addBiasRows(x: usize, bias: usize, seqLen: i32, dim: i32): void {
  for (let s = 0; s < seqLen; s++) addRows(x + ((<usize>s * <usize>dim) << 2), bias, dim);
}

// Causal depthwise convolution over time, as src/backend/js/recurrent.ts conv1d: out_t[c] = bias[c]
// + Σ_k weight[k, c]·u_{t−(width−1−k)}[c] summed in f64 in k order, u before this call from
// `history` (width − 1 rows, oldest first), which then holds this call's last width − 1 inputs.
// `scratch`: (width − 1) · channels floats. Only channels [from, to) are computed (rows stay
// `channels` wide): channels are independent, so threads may take disjoint ranges of one call.
export function conv1dChannels(
  out: usize,
  x: usize,
  weight: usize,
  bias: usize,
  history: usize,
  seqLen: i32,
  channels: i32,
  width: i32,
  scratch: usize,
  from: i32,
  to: i32,
): void {
  const past = width - 1;
  const rowBytes = <usize>channels << 2;
  const pairsEnd = from + ((to - from) & ~1);
  for (let t = 0; t < seqLen; t++) {
    const o = out + <usize>t * rowBytes;
    for (let c = from; c < pairsEnd; c += 2) {
      const at = <usize>c << 2;
      let acc = load2(bias + at);
      for (let k = 0; k < width; k++) {
        const u = load2(inputRow(x, history, t - past + k, past, rowBytes) + at);
        acc = f64x2.add(acc, f64x2.mul(load2(weight + <usize>k * rowBytes + at), u));
      }
      store2(o + at, acc);
    }
    for (let c = pairsEnd; c < to; c++) {
      const at = <usize>c << 2;
      let acc = <f64>load<f32>(bias + at);
      for (let k = 0; k < width; k++) {
        acc += <f64>load<f32>(weight + <usize>k * rowBytes + at) * <f64>load<f32>(inputRow(x, history, t - past + k, past, rowBytes) + at);
      }
      store<f32>(o + at, <f32>acc);
    }
  }
  // The last `past` inputs, oldest first, through scratch (they may come from history itself).
  const at = <usize>from << 2;
  const spanBytes = <usize>(to - from) << 2;
  for (let r = 0; r < past; r++) {
    memory.copy(scratch + <usize>r * rowBytes + at, inputRow(x, history, seqLen - past + r, past, rowBytes) + at, spanBytes);
  }
  for (let r = 0; r < past; r++) memory.copy(history + <usize>r * rowBytes + at, scratch + <usize>r * rowBytes + at, spanBytes);
}

// The input row at time t of this call (t < 0: from history).
@inline function inputRow(x: usize, history: usize, t: i32, past: i32, rowBytes: usize): usize {
  return t >= 0 ? x + <usize>t * rowBytes : history + <usize>(past + t) * rowBytes;
}

// 1 / (1 + e^−v) in f64, as the reference's sigmoid.
@inline function sigmoid(v: f64): f64 {
  return 1 / (1 + Math.exp(-v));
}

// The RG-LRU scan as src/backend/js/recurrent.ts rgLruScan, in f64 with the state held as f32: per
// step and channel a = e^(−8·σ(recurrentGate)·softplusLambda), h = a·h + √(1 − a²)·σ(inputGate)·x,
// with a = 0 and the multiplier 1 at position 0; out = h per step. Math.exp here is
// AssemblyScript's (musl's algorithm), not V8's: results may differ from the reference in the
// last bit of an f64, rarely of the f32 state. Only channels [from, to) are computed: each
// channel's recurrence is its own.
export function rgLruScanChannels(
  out: usize,
  x: usize,
  inputGate: usize,
  recurrentGate: usize,
  softplusLambda: usize,
  state: usize,
  seqLen: i32,
  width: i32,
  startPos: i32,
  from: i32,
  to: i32,
): void {
  for (let t = 0; t < seqLen; t++) {
    const reset = startPos + t == 0;
    const row = (<usize>t * <usize>width) << 2;
    for (let c = from; c < to; c++) {
      const at = <usize>c << 2;
      const logA = -8 * sigmoid(<f64>load<f32>(recurrentGate + row + at)) * <f64>load<f32>(softplusLambda + at);
      const a: f64 = reset ? 0 : Math.exp(logA);
      const multiplier: f64 = reset ? 1 : Math.sqrt(1 - Math.exp(2 * logA));
      const gated = multiplier * sigmoid(<f64>load<f32>(inputGate + row + at)) * <f64>load<f32>(x + row + at);
      const h = <f32>(a * <f64>load<f32>(state + at) + gated);
      store<f32>(state + at, h);
      store<f32>(out + row + at, h);
    }
  }
}
