/**
 * The kernel interface: every numeric operation of the forward pass goes through one of these, so a
 * faster backend (WebAssembly, WebGPU) drops in without touching model code. All tensors are flat
 * row-major Float32Arrays with their dimensions passed explicitly (llm.c style).
 */
import type { MatrixDtype } from "../weights/dtype.js";

/** The GELU of GeGLU: `gelu_tanh` is what Gemma was trained with; `gelu_exact` only when a config asks for it. */
export type Activation = "gelu_tanh" | "gelu_exact";

export type { MatrixDtype };

/** A [rows, cols] weight matrix kept in its stored width or quantized (PyTorch [out, in] layout). */
export interface Weight {
  readonly dtype: MatrixDtype;
  readonly rows: number;
  readonly cols: number;
  /** f32: Float32Array; f16/bf16: Uint16Array; q8_0/q4_0: Uint8Array of blocks. Replaceable by a backend (Kernels.adopt). */
  data: Float32Array | Uint16Array | Uint8Array;
}

export interface AttentionArgs {
  /** [seqLen, nHeads·headDim] output. */
  out: Float32Array;
  /** [seqLen, nHeads·headDim] queries, RoPE already applied. */
  q: Float32Array;
  /** [seqLen, nKvHeads·headDim] keys and values of the new positions startPos..startPos+seqLen-1. */
  newK: Float32Array;
  newV: Float32Array;
  /** Cached keys/values of earlier positions: position j lives in row j % pastCapacity (arrays from `kvStorage` are read in place). */
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

/** One call of Kernels.recurrence; every array is [seqLen, width] unless it says otherwise. */
export interface RecurrenceArgs {
  /** gelu_tanh(y) ⊙ h; may be x itself. */
  out: Float32Array;
  /** The x branch (W_x n + b_x), input of the convolution. */
  x: Float32Array;
  /** The y branch (W_y n + b_y), through gelu_tanh as the output's gate. */
  y: Float32Array;
  /** [convWidth, width] taps and [width] bias of the causal depthwise convolution. */
  convWeight: Float32Array;
  convBias: Float32Array;
  /** [convWidth − 1, width]: the last inputs before this call, oldest first; updated in place. */
  history: Float32Array;
  /** [nBlocks, blockWidth, blockWidth] block-diagonal gate weights (in × out per block), [width] biases. */
  inputGate: Float32Array;
  inputGateBias: Float32Array;
  recurrentGate: Float32Array;
  recurrentGateBias: Float32Array;
  /** [width] softplus(Λ). */
  softplusLambda: Float32Array;
  /** [width] RNN state (float32), updated in place. */
  state: Float32Array;
  seqLen: number;
  width: number;
  nBlocks: number;
  convWidth: number;
  /** Position of the first token (0 resets the recurrence). */
  startPos: number;
}

/**
 * Memory a backend lends a KV cache for its rows, so its attention reads the cache where it lies
 * instead of copying every visible row in per call.
 */
export interface KvStorage {
  /** `floats` zeroed floats in the backend's memory, or null when it has no room (the cache then uses its own). */
  allocate(floats: number): Float32Array | null;
  /** Gives back an array `allocate` returned (the caller must not touch it afterwards); others are ignored. */
  release(array: Float32Array): void;
}

export interface Kernels {
  readonly name: string;
  /** Where KV caches made for these kernels keep their rows (the wasm backend's own memory); absent: plain arrays. */
  readonly kvStorage?: KvStorage;
  /**
   * Called once with every weight matrix of a loaded model, so a backend can move them where its
   * kernels read them (WebAssembly memory); it may replace each `data` with a view of its own, in
   * its own layout (the wasm backend packs Q8_0/Q4_0 rows in groups of four): afterwards only that
   * backend's kernels read the matrix.
   */
  adopt?(weights: Weight[]): void;
  /**
   * Quantizes an f32, bf16 or f16 matrix to Q8_0 or Q4_0 straight into the backend's memory (the blocks
   * weights/matrix-rows.ts toBlocks makes, bit for bit) and adopts the result; without it the
   * loader quantizes in TypeScript and adopts.
   */
  quantize?(w: Weight, target: "q8_0" | "q4_0"): Weight;
  /**
   * Reads a matrix's stored bytes (`dtype` as stored) straight into the backend's memory through
   * `read` (into.length bytes from byteOffset), quantizing to `quantizeTo` on the way when given
   * (from f32/bf16/f16 only), and adopts the result: no copy of the matrix in JavaScript memory.
   */
  receive?(
    matrix: { dtype: MatrixDtype; rows: number; cols: number },
    read: (into: Uint8Array, byteOffset: number) => Promise<void>,
    quantizeTo: "q8_0" | "q4_0" | null,
  ): Promise<Weight>;
  /** Called once the model is loaded (a threaded backend hands its memories to its workers). */
  ready?(): Promise<void>;
  /**
   * GB/s at which this backend's threads read every weight it holds, once, as fast as they can (the
   * best of two passes of a plain streaming kernel): the bound a decode step's weight reads can
   * reach at this moment (`gemma-ts bench`). Absent where weights are not the backend's own.
   */
  weightReadGBps?(): number;
  /** Stops worker threads now instead of when the kernels are garbage-collected; the kernels then run on one thread. */
  release?(): Promise<void>;
  /** out[s, r] = Σ_c x[s, c] · w[r, c] for s < seqLen (y = x Wᵀ). */
  matmul(out: Float32Array, x: Float32Array, w: Weight, seqLen: number): void;
  /** Gemma RMSNorm: out = x / sqrt(mean(x²) + eps) · gain, where gain = 1 + w (§2). In-place allowed. */
  rmsnorm(out: Float32Array, x: Float32Array, gain: Float32Array, seqLen: number, dim: number, eps: number): void;
  /**
   * Rotary embedding in place on [seqLen, nHeads·headDim] at positions startPos...: the first
   * 2·invFreq.length dims of each head rotate in half-split (NeoX) pairs (j, j + invFreq.length),
   * the rest pass through (Gemma rotates all of them, RecurrentGemma the first half).
   */
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
  /** x[s, i] += bias[i]. */
  addBias(x: Float32Array, bias: Float32Array, seqLen: number, dim: number): void;
  /**
   * A recurrent block's branch between its input projections and its output projection
   * (RECURRENTGEMMA.md §4): out = gelu_tanh(y) ⊙ RG-LRU(Conv1D(x)), the convolution's history and
   * the RNN state updated in place (RecurrenceArgs).
   */
  recurrence(args: RecurrenceArgs): void;
}
