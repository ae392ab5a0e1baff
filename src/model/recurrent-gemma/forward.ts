/**
 * The RecurrentGemma (Griffin) forward pass, following Google's reference (RECURRENTGEMMA.md §2-§6):
 * residual blocks of RG-LRU recurrence or local multi-query attention, each followed by a GeGLU MLP.
 * The decode state has a constant size: conv history, a float32 RNN state, a W-row key/value ring.
 */
import type { Kernels, KvStorage } from "../../backend/kernels.js";
import { GenerationError } from "../../errors.js";
import { bf16ToF32, f32ToBf16 } from "../../weights/dtype.js";
import type { CausalLM, DecodeState } from "../causal-lm.js";
import { LayerKv } from "../kv-cache.js";
import { outputLogits } from "../output-head.js";
import { ropeInverseFrequencies } from "../rope.js";
import type { RecurrentGemmaConfig } from "./config.js";
import type { AttentionWeights, RecurrentGemmaWeights, RecurrentWeights } from "./weights.js";

/** Per-block state: conv history + RNN state for recurrent blocks, a key/value ring for attention. */
export class RecurrentState implements DecodeState {
  length = 0;
  readonly convHistory: (Float32Array | null)[];
  readonly rnn: (Float32Array | null)[];
  readonly kv: (LayerKv | null)[];

  /** `storage`: where the attention rings keep their rows (Kernels.kvStorage); absent: plain arrays. */
  constructor(
    readonly config: RecurrentGemmaConfig,
    storage?: KvStorage,
  ) {
    const c = config;
    this.convHistory = c.blockTypes.map((t) => (t === "recurrent" ? new Float32Array((c.convWidth - 1) * c.lruWidth) : null));
    this.rnn = c.blockTypes.map((t) => (t === "recurrent" ? new Float32Array(c.lruWidth) : null));
    // W rows suffice for W+1 visible keys because new keys are written after attention (§6).
    this.kv = c.blockTypes.map((t) =>
      t === "attention" ? new LayerKv(c.attentionWindow, c.attentionWindow + 1, c.nKvHeads * c.headDim, storage) : null,
    );
  }

  /** A copy of the whole state at one position (taken by `mark`), the only way back in a recurrence. */
  private saved: { length: number; arrays: Float32Array[] } | null = null;

  /** A recurrence cannot be undone: possible are "stay", "start over" and the marked position. */
  canRewindTo(position: number): boolean {
    return position === this.length || position === 0 || (this.saved !== null && position === this.saved.length && position <= this.length);
  }

  rewindPointAtMost(position: number): number {
    if (position >= this.length) return this.length;
    return this.saved !== null && this.saved.length <= position ? this.saved.length : 0;
  }

  mark(): void {
    this.saved = { length: this.length, arrays: this.arrays().map((a) => a.slice()) };
  }

  rewindTo(position: number): void {
    if (position === this.length) return;
    if (position === 0) {
      this.clear();
      return;
    }
    if (this.saved === null || position !== this.saved.length) {
      throw new GenerationError(
        `cannot rewind a RecurrentGemma state from ${this.length} to ${position}: a recurrence keeps no history (only to 0 or a marked ` +
          `position)`,
      );
    }
    const arrays = this.arrays();
    // Ring buffers may have grown since the mark; copy what was saved into the front.
    this.saved.arrays.forEach((copy, i) => {
      arrays[i]!.fill(0);
      arrays[i]!.set(copy);
    });
    this.length = position;
  }

  /** Every array of the state, in a fixed order. */
  private arrays(): Float32Array[] {
    const out: Float32Array[] = [];
    for (const a of [...this.convHistory, ...this.rnn]) if (a) out.push(a);
    for (const ring of this.kv) if (ring) out.push(ring.k, ring.v);
    return out;
  }

  clear(): void {
    this.length = 0;
    for (const h of this.convHistory) h?.fill(0);
    for (const h of this.rnn) h?.fill(0);
  }

  /** The attention rings' rows go back; the conv and RNN state (a few hundred KB) are cleared. */
  release(): void {
    for (const ring of this.kv) ring?.release();
    this.saved = null;
    this.clear();
  }

  bytes(): number {
    const arrays = [...this.convHistory, ...this.rnn].reduce((s, a) => s + (a?.byteLength ?? 0), 0);
    return arrays + this.kv.reduce((s, l) => s + (l ? l.k.byteLength + l.v.byteLength : 0), 0);
  }
}

export class RecurrentGemmaForward implements CausalLM {
  private readonly invFreq: Float32Array;
  /** sqrt(width) rounded to bfloat16, even for float32 weights (§1, §9). */
  readonly embedScale: number;

  constructor(
    readonly config: RecurrentGemmaConfig,
    readonly weights: RecurrentGemmaWeights,
    readonly kernels: Kernels,
  ) {
    // Partial RoPE: rotaryDim of each head's dims, frequencies 10000^(-2j/rotaryDim) (§5).
    this.invFreq = ropeInverseFrequencies(config.rotaryDim, config.ropeTheta);
    this.embedScale = bf16ToF32(f32ToBf16(Math.sqrt(config.dModel)));
  }

  createState(): RecurrentState {
    return new RecurrentState(this.config, this.kernels.kvStorage);
  }

  forward(ids: readonly number[], state: DecodeState | null, logitsFor: "all" | "last"): Float32Array {
    if (state !== null && !(state instanceof RecurrentState))
      throw new GenerationError("a RecurrentGemma model needs a RecurrentState as its decode state");
    const c = this.config;
    const k = this.kernels;
    const seqLen = ids.length;
    if (seqLen === 0) throw new GenerationError("forward needs at least one token");
    for (const id of ids) {
      if (!Number.isInteger(id) || id < 0 || id >= c.vocabSize)
        throw new GenerationError(`token id ${id} is outside the vocabulary of ${c.vocabSize}`);
    }
    // Without a state (logits() of a whole sequence), run on a fresh one.
    const s = state ?? new RecurrentState(c, k.kvStorage);
    const startPos = s.length;
    const h = new Float32Array(seqLen * c.dModel);
    k.embed(h, this.weights.embedding, ids, this.embedScale);
    const normed = new Float32Array(seqLen * c.dModel);
    const out = new Float32Array(seqLen * c.dModel);
    const gate = new Float32Array(seqLen * c.ffnDim);
    const up = new Float32Array(seqLen * c.ffnDim);
    for (const [i, block] of this.weights.blocks.entries()) {
      k.rmsnorm(normed, h, block.temporalNorm, seqLen, c.dModel, c.rmsNormEps);
      if (block.temporal.kind === "recurrent") this.recurrent(i, block.temporal, normed, out, s, seqLen, startPos);
      else this.attention(i, block.temporal, normed, out, s, seqLen, startPos);
      k.addInPlace(h, out, seqLen * c.dModel);

      k.rmsnorm(normed, h, block.channelNorm, seqLen, c.dModel, c.rmsNormEps);
      k.matmul(gate, normed, block.gate, seqLen);
      k.addBias(gate, block.gateBias, seqLen, c.ffnDim);
      k.matmul(up, normed, block.up, seqLen);
      k.addBias(up, block.upBias, seqLen, c.ffnDim);
      k.geglu(gate, gate, up, seqLen * c.ffnDim, "gelu_tanh");
      k.matmul(out, gate, block.down, seqLen);
      k.addBias(out, block.downBias, seqLen, c.dModel);
      k.addInPlace(h, out, seqLen * c.dModel);
    }
    s.length = startPos + seqLen;

    return outputLogits(k, c, h, seqLen, logitsFor, this.weights.finalNorm, this.weights.embedding);
  }

  /** y = gelu(W_y n + b_y); u = RG-LRU(Conv1D(W_x n + b_x)); out = W_out (u ⊙ y) + b_out (§4). */
  private recurrent(
    index: number,
    w: RecurrentWeights,
    n: Float32Array,
    out: Float32Array,
    s: RecurrentState,
    seqLen: number,
    startPos: number,
  ): void {
    const c = this.config;
    const k = this.kernels;
    const width = c.lruWidth;
    const y = new Float32Array(seqLen * width);
    const x = new Float32Array(seqLen * width);
    k.matmul(y, n, w.linearY, seqLen);
    k.addBias(y, w.linearYBias, seqLen, width);
    k.matmul(x, n, w.linearX, seqLen);
    k.addBias(x, w.linearXBias, seqLen, width);
    // gelu(y) ⊙ RG-LRU(Conv1D(x)), written over x.
    k.recurrence({
      out: x,
      x,
      y,
      convWeight: w.convWeight,
      convBias: w.convBias,
      history: s.convHistory[index]!,
      inputGate: w.inputGate,
      inputGateBias: w.inputGateBias,
      recurrentGate: w.recurrentGate,
      recurrentGateBias: w.recurrentGateBias,
      softplusLambda: w.softplusLambda,
      state: s.rnn[index]!,
      seqLen,
      width,
      nBlocks: c.nHeads,
      convWidth: c.convWidth,
      startPos,
    });
    k.matmul(out, x, w.linearOut, seqLen);
    k.addBias(out, w.linearOutBias, seqLen, c.dModel);
  }

  /** Local multi-query attention over the W previous tokens plus itself, partial RoPE, no soft-cap (§5). */
  private attention(
    index: number,
    w: AttentionWeights,
    n: Float32Array,
    out: Float32Array,
    s: RecurrentState,
    seqLen: number,
    startPos: number,
  ): void {
    const c = this.config;
    const k = this.kernels;
    const q = new Float32Array(seqLen * c.nHeads * c.headDim);
    const keys = new Float32Array(seqLen * c.nKvHeads * c.headDim);
    const values = new Float32Array(seqLen * c.nKvHeads * c.headDim);
    const attn = new Float32Array(seqLen * c.nHeads * c.headDim);
    k.matmul(q, n, w.q, seqLen);
    k.matmul(keys, n, w.k, seqLen);
    k.matmul(values, n, w.v, seqLen);
    k.rope(q, seqLen, c.nHeads, c.headDim, startPos, this.invFreq);
    k.rope(keys, seqLen, c.nKvHeads, c.headDim, startPos, this.invFreq);
    const ring = s.kv[index]!;
    ring.reserve(startPos + seqLen);
    k.attention({
      out: attn,
      q,
      newK: keys,
      newV: values,
      pastK: ring.k,
      pastV: ring.v,
      pastCapacity: ring.ringSize,
      startPos,
      seqLen,
      nHeads: c.nHeads,
      nKvHeads: c.nKvHeads,
      headDim: c.headDim,
      scale: 1 / Math.sqrt(c.headDim),
      softcap: null,
      window: c.attentionWindow + 1,
    });
    ring.write(keys, values, startPos, seqLen);
    k.matmul(out, attn, w.o, seqLen);
    k.addBias(out, w.oBias, seqLen, c.dModel);
  }
}
