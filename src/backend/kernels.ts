/**
 * The kernel interface: every numeric operation of the forward pass goes through one of these, so a
 * faster backend (WebAssembly, WebGPU) drops in without touching model code. All tensors are flat
 * row-major Float32Arrays with their dimensions passed explicitly (llm.c style).
 */
import type { Activation } from "../config.js";
import type { WeightDtype } from "../weights/dtype.js";

/** A [rows, cols] weight matrix kept in its stored width (PyTorch [out, in] layout). */
export interface Weight {
  dtype: WeightDtype;
  rows: number;
  cols: number;
  data: Float32Array | Uint16Array;
}

export interface AttentionArgs {
  /** [seqLen, nHeads·headDim] output. */
  out: Float32Array;
  /** [seqLen, nHeads·headDim] queries, RoPE already applied. */
  q: Float32Array;
  /** [seqLen, nKvHeads·headDim] keys and values of the new positions startPos..startPos+seqLen-1. */
  newK: Float32Array;
  newV: Float32Array;
  /** Cached keys/values of earlier positions: position j lives in row j % pastCapacity. */
  pastK: Float32Array;
  pastV: Float32Array;
  pastCapacity: number;
  startPos: number;
  seqLen: number;
  nHeads: number;
  nKvHeads: number;
  headDim: number;
  /** Multiplies q·k (query_pre_attn_scalar^-0.5). */
  scale: number;
  /** cap·tanh(s/cap), applied after scaling and before the mask (GEMMA2.md §2.2.5); null = none. */
  softcap: number | null;
  /** Key j is visible from query i iff 0 <= i - j < window (§2.2.6); null = causal only. */
  window: number | null;
}

export interface Kernels {
  readonly name: string;
  /** out[s, r] = Σ_c x[s, c] · w[r, c] for s < seqLen (y = x Wᵀ). */
  matmul(out: Float32Array, x: Float32Array, w: Weight, seqLen: number): void;
  /** Gemma RMSNorm: out = x / sqrt(mean(x²) + eps) · gain, where gain = 1 + w (§2). In-place allowed. */
  rmsnorm(out: Float32Array, x: Float32Array, gain: Float32Array, seqLen: number, dim: number, eps: number): void;
  /** Half-split (NeoX) rotary embedding, in place, on [seqLen, nHeads·headDim] at positions startPos... */
  rope(x: Float32Array, seqLen: number, nHeads: number, headDim: number, startPos: number, invFreq: Float32Array): void;
  attention(args: AttentionArgs): void;
  /** out[i] = act(gate[i]) · up[i] (GeGLU, §2.2.10). In-place on gate allowed. */
  geglu(out: Float32Array, gate: Float32Array, up: Float32Array, n: number, activation: Activation): void;
  /** out[i] += x[i]. */
  addInPlace(out: Float32Array, x: Float32Array, n: number): void;
  /** x[i] = cap · tanh(x[i] / cap). */
  softcap(x: Float32Array, n: number, cap: number): void;
  /** out[s] = table[ids[s]] · scale. */
  embed(out: Float32Array, table: Weight, ids: ArrayLike<number>, scale: number): void;
}
