/**
 * Forward/backward pairs of every operation in the Gemma 2 forward pass, over flat arrays in the
 * style of llm.c. Each works on Float32Array (training) and Float64Array (gradient checks) alike.
 * Backward functions accumulate (+=) into parameter gradients and input gradients, so a value used
 * twice (a residual stream, the tied embedding) just receives both contributions.
 */
import type { AttentionArgs } from "../backend/kernels.js";

export type Vec = Float32Array | Float64Array;

/** out[m, n] (+)= Σ_k a[m, k] · b[n, k]: y = x Wᵀ with W in PyTorch [out, in] layout. */
export type MatmulNT = (out: Vec, a: Vec, b: Vec, m: number, k: number, n: number, accumulate: boolean) => void;

export const matmulNT: MatmulNT = (out, a, b, m, k, n, accumulate) => {
  for (let i = 0; i < m; i++) {
    const ai = i * k;
    for (let j = 0; j < n; j++) {
      const bj = j * k;
      let sum = 0;
      for (let c = 0; c < k; c++) sum += a[ai + c]! * b[bj + c]!;
      out[i * n + j] = accumulate ? out[i * n + j]! + sum : sum;
    }
  }
};

/** [rows, cols] → [cols, rows]. */
export function transpose<T extends Vec>(x: T, rows: number, cols: number): T {
  const out = new (x.constructor as new (n: number) => T)(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = x[r * cols + c]!;
  return out;
}

/** A linear layer's three products, all as x·Wᵀ on a backend's matmul (transposes are O(size)). */
export class Linear {
  /** Transposed weights, reused by every sequence of a step (weights change only between steps). */
  private transposed = new WeakMap<Vec, Vec>();

  constructor(private readonly nt: MatmulNT = matmulNT) {}

  /** Forgets transposed weights: call whenever weights change (the model does, per step). */
  weightsChanged(): void {
    this.transposed = new WeakMap();
  }

  /** out[T, outDim] = x[T, inDim] · Wᵀ. */
  forward(out: Vec, x: Vec, w: Vec, tokens: number, inDim: number, outDim: number): void {
    this.nt(out, x, w, tokens, inDim, outDim, false);
  }

  /** dx += dout · W; dW += doutᵀ · x (either skipped when null: frozen weights, inputs without gradient). */
  backward(dx: Vec | null, dw: Vec | null, dout: Vec, x: Vec, w: Vec, tokens: number, inDim: number, outDim: number): void {
    if (dx) {
      let wt = this.transposed.get(w);
      if (!wt) {
        wt = transpose(w, outDim, inDim);
        this.transposed.set(w, wt);
      }
      this.nt(dx, dout, wt, tokens, outDim, inDim, true);
    }
    if (dw) this.nt(dw, transpose(dout, tokens, outDim), transpose(x, tokens, inDim), outDim, tokens, inDim, true);
  }
}

/** out = x / rms(x) · (1 + w) per row; keeps 1/rms per row for the backward pass. */
export function rmsnormForward(out: Vec, rstd: Vec, x: Vec, w: Vec, tokens: number, dim: number, eps: number): void {
  for (let t = 0; t < tokens; t++) {
    const base = t * dim;
    let sumSq = 0;
    for (let i = 0; i < dim; i++) sumSq += x[base + i]! * x[base + i]!;
    const r = 1 / Math.sqrt(sumSq / dim + eps);
    rstd[t] = r;
    for (let i = 0; i < dim; i++) out[base + i] = x[base + i]! * r * (1 + w[i]!);
  }
}

export function rmsnormBackward(dx: Vec, dw: Vec, dout: Vec, x: Vec, w: Vec, rstd: Vec, tokens: number, dim: number): void {
  for (let t = 0; t < tokens; t++) {
    const base = t * dim;
    const r = rstd[t]!;
    // n = x·r; dn = dout·(1 + w); dx = r·(dn − n·mean(dn·n))
    let dot = 0;
    for (let i = 0; i < dim; i++) {
      const n = x[base + i]! * r;
      const dn = dout[base + i]! * (1 + w[i]!);
      dw[i] = dw[i]! + dout[base + i]! * n;
      dot += dn * n;
    }
    dot /= dim;
    for (let i = 0; i < dim; i++) {
      const n = x[base + i]! * r;
      dx[base + i] = dx[base + i]! + r * (dout[base + i]! * (1 + w[i]!) - n * dot);
    }
  }
}

/** cos/sin tables [tokens, headDim/2] for positions 0..tokens-1, built in float32 as inference does. */
export function ropeTables(tokens: number, invFreq: Float32Array): { cos: Float64Array; sin: Float64Array } {
  const half = invFreq.length;
  const cos = new Float64Array(tokens * half);
  const sin = new Float64Array(tokens * half);
  for (let t = 0; t < tokens; t++) {
    for (let j = 0; j < half; j++) {
      const angle = Math.fround(t * invFreq[j]!);
      cos[t * half + j] = Math.cos(angle);
      sin[t * half + j] = Math.sin(angle);
    }
  }
  return { cos, sin };
}

/** NeoX rotation of pairs (j, j + half) in place; `inverse` rotates back (the backward pass). */
export function rope(x: Vec, tokens: number, heads: number, headDim: number, cos: Float64Array, sin: Float64Array, inverse = false): void {
  const half = headDim / 2;
  const sign = inverse ? -1 : 1;
  for (let t = 0; t < tokens; t++) {
    for (let h = 0; h < heads; h++) {
      const base = (t * heads + h) * headDim;
      for (let j = 0; j < half; j++) {
        const c = cos[t * half + j]!;
        const s = sign * sin[t * half + j]!;
        const x1 = x[base + j]!;
        const x2 = x[base + half + j]!;
        x[base + j] = x1 * c - x2 * s;
        x[base + half + j] = x2 * c + x1 * s;
      }
    }
  }
}

/** The inference kernel's attention settings (heads, scale, soft-cap, window) over `tokens` positions. */
export interface AttentionShape extends Pick<AttentionArgs, "nHeads" | "nKvHeads" | "headDim" | "scale" | "softcap" | "window"> {
  tokens: number;
}

/**
 * Causal (optionally sliding-window) grouped-query attention with tanh soft-capping of the scores.
 * Saves the probabilities P [heads, T, T] and the capped scores C for the backward pass.
 */
export function attentionForward(out: Vec, probs: Vec, capped: Vec, q: Vec, k: Vec, v: Vec, a: AttentionShape): void {
  const { tokens: T, nHeads, nKvHeads, headDim: D, scale, softcap, window } = a;
  const group = nHeads / nKvHeads;
  out.fill(0);
  for (let h = 0; h < nHeads; h++) {
    const g = Math.floor(h / group);
    for (let t = 0; t < T; t++) {
      const row = (h * T + t) * T;
      const first = window === null ? 0 : Math.max(0, t - window + 1);
      const qBase = (t * nHeads + h) * D;
      let max = -Infinity;
      for (let s = first; s <= t; s++) {
        const kBase = (s * nKvHeads + g) * D;
        let dot = 0;
        for (let d = 0; d < D; d++) dot += q[qBase + d]! * k[kBase + d]!;
        let score = dot * scale;
        if (softcap !== null) score = softcap * Math.tanh(score / softcap);
        capped[row + s] = score;
        if (score > max) max = score;
      }
      let sum = 0;
      for (let s = 0; s < T; s++) {
        if (s < first || s > t) {
          probs[row + s] = 0;
          continue;
        }
        const p = Math.exp(capped[row + s]! - max);
        probs[row + s] = p;
        sum += p;
      }
      for (let s = first; s <= t; s++) {
        const p = probs[row + s]! / sum;
        probs[row + s] = p;
        const vBase = (s * nKvHeads + g) * D;
        for (let d = 0; d < D; d++) out[qBase + d] = out[qBase + d]! + p * v[vBase + d]!;
      }
    }
  }
}

export function attentionBackward(
  dq: Vec,
  dk: Vec,
  dv: Vec,
  dout: Vec,
  probs: Vec,
  capped: Vec,
  q: Vec,
  k: Vec,
  v: Vec,
  a: AttentionShape,
): void {
  const { tokens: T, nHeads, nKvHeads, headDim: D, scale, softcap, window } = a;
  const group = nHeads / nKvHeads;
  const dp = new Float64Array(T);
  for (let h = 0; h < nHeads; h++) {
    const g = Math.floor(h / group);
    for (let t = 0; t < T; t++) {
      const row = (h * T + t) * T;
      const first = window === null ? 0 : Math.max(0, t - window + 1);
      const qBase = (t * nHeads + h) * D;
      // dP = dout·v; dv += P·dout; dC = P ⊙ (dP − Σ P dP)
      let weighted = 0;
      for (let s = first; s <= t; s++) {
        const vBase = (s * nKvHeads + g) * D;
        const p = probs[row + s]!;
        let dot = 0;
        for (let d = 0; d < D; d++) {
          dot += dout[qBase + d]! * v[vBase + d]!;
          dv[vBase + d] = dv[vBase + d]! + p * dout[qBase + d]!;
        }
        dp[s] = dot;
        weighted += p * dot;
      }
      for (let s = first; s <= t; s++) {
        let dScore = probs[row + s]! * (dp[s]! - weighted);
        if (softcap !== null) {
          const c = capped[row + s]! / softcap;
          dScore *= 1 - c * c;
        }
        const kBase = (s * nKvHeads + g) * D;
        const f = dScore * scale;
        for (let d = 0; d < D; d++) {
          dq[qBase + d] = dq[qBase + d]! + f * k[kBase + d]!;
          dk[kBase + d] = dk[kBase + d]! + f * q[qBase + d]!;
        }
      }
    }
  }
}

const GELU_C = Math.sqrt(2 / Math.PI);

/** out = gelu_tanh(gate) · up. */
export function gegluForward(out: Vec, gate: Vec, up: Vec, n: number): void {
  for (let i = 0; i < n; i++) {
    const x = gate[i]!;
    out[i] = 0.5 * x * (1 + Math.tanh(GELU_C * (x + 0.044715 * x * x * x))) * up[i]!;
  }
}

export function gegluBackward(dgate: Vec, dup: Vec, dout: Vec, gate: Vec, up: Vec, n: number): void {
  for (let i = 0; i < n; i++) {
    const x = gate[i]!;
    const th = Math.tanh(GELU_C * (x + 0.044715 * x * x * x));
    const gelu = 0.5 * x * (1 + th);
    const dGelu = 0.5 * (1 + th) + 0.5 * x * (1 - th * th) * GELU_C * (1 + 3 * 0.044715 * x * x);
    dup[i] = dup[i]! + dout[i]! * gelu;
    dgate[i] = dgate[i]! + dout[i]! * up[i]! * dGelu;
  }
}

/** out[t] = table[ids[t]] · scale. */
export function embeddingForward(out: Vec, table: Vec, ids: ArrayLike<number>, dim: number, scale: number): void {
  for (let t = 0; t < ids.length; t++) {
    const row = ids[t]! * dim;
    for (let i = 0; i < dim; i++) out[t * dim + i] = table[row + i]! * scale;
  }
}

export function embeddingBackward(dtable: Vec, dout: Vec, ids: ArrayLike<number>, dim: number, scale: number): void {
  for (let t = 0; t < ids.length; t++) {
    const row = ids[t]! * dim;
    for (let i = 0; i < dim; i++) dtable[row + i] = dtable[row + i]! + dout[t * dim + i]! * scale;
  }
}

/** logits ← cap·tanh(logits / cap) in place (the final soft-cap). */
export function softcapForward(x: Vec, n: number, cap: number): void {
  for (let i = 0; i < n; i++) x[i] = cap * Math.tanh(x[i]! / cap);
}

/** dx = dcapped · (1 − (capped / cap)²), in place on `grad`. */
export function softcapBackward(grad: Vec, capped: Vec, n: number, cap: number): void {
  for (let i = 0; i < n; i++) {
    const c = capped[i]! / cap;
    grad[i] = grad[i]! * (1 - c * c);
  }
}

/** log-softmax of one row of logits into `out`. */
export function logSoftmax(out: Vec, logits: Vec, offset: number, n: number): void {
  let max = -Infinity;
  for (let i = 0; i < n; i++) max = Math.max(max, logits[offset + i]!);
  let sum = 0;
  for (let i = 0; i < n; i++) sum += Math.exp(logits[offset + i]! - max);
  const logSum = max + Math.log(sum);
  for (let i = 0; i < n; i++) out[i] = logits[offset + i]! - logSum;
}
