/**
 * A trainable Gemma 2: parameters and gradients as flat arrays under their Hugging Face names, a
 * forward pass over one sequence that keeps what the backward pass needs, and the backward pass.
 * Same computation as src/model/forward.ts (GEMMA2.md §2): embedding · sqrt(d), per layer
 * pre-norm → attention (GQA, RoPE, soft-cap, sliding window on local layers) → post-norm →
 * residual, pre-norm → GeGLU MLP → post-norm → residual, final norm, tied output head, final
 * soft-cap. Float32 for training, Float64 for gradient checks.
 */
import type { GemmaConfig } from "../model/gemma/config.js";
import { ConfigError } from "../errors.js";
import { Rng } from "../generate/rng.js";
import { embeddingNormalizer } from "../model/gemma/forward.js";
import { ropeInverseFrequencies } from "../model/rope.js";
import { expectedTensors } from "../model/gemma/weights.js";
import { crossEntropy, distillation, type TeacherTopK } from "./losses.js";
import {
  attentionBackward,
  attentionForward,
  embeddingBackward,
  embeddingForward,
  gegluBackward,
  gegluForward,
  Linear,
  rmsnormBackward,
  rmsnormForward,
  rope,
  ropeTables,
  softcapBackward,
  softcapForward,
  type AttentionShape,
  type Vec,
} from "./ops.js";

export type ArrayKind = "f32" | "f64";

/** What one sequence is trained towards. */
/** Summed losses of one sequence (see `lossAndBackward`). */
export interface SequenceLoss {
  /** (1 − alpha) × next-token + alpha × distillation: what the gradient follows. */
  total: number;
  nextToken: number;
  /** Null without teacher targets. */
  distillation: number | null;
}

export interface SequenceTarget {
  /** Next-token ids, one per input position. */
  nextTokens: ArrayLike<number>;
  /** Teacher top-k targets for the same positions (distillation). */
  teacher?: TeacherTopK;
  /** Weight of the distillation loss; the next-token loss gets 1 − alpha (default 1 with a teacher). */
  alpha?: number;
  /** Positions to score (non-zero) for the next-token loss; all when absent. */
  mask?: ArrayLike<number>;
}

/** A low-rank adapter on one matrix: W x + scale · B (A x), A [rank, in], B [out, rank] (LoRA). */
export interface LoraAdapter {
  a: Vec;
  b: Vec;
  gradA: Vec;
  gradB: Vec;
  rank: number;
  scale: number;
}

/** The projections LoRA can adapt, by their Hugging Face module names. */
export const LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"] as const;

/** Activations of one layer kept from the forward pass. */
interface LayerCache {
  /** x·Aᵀ of each adapted projection, by weight name. */
  lowRank: Map<string, Vec>;
  input: Vec;
  rstd1: Vec;
  normed1: Vec;
  q: Vec;
  k: Vec;
  v: Vec;
  probs: Vec;
  capped: Vec;
  attn: Vec;
  projected: Vec;
  rstd2: Vec;
  middle: Vec;
  rstd3: Vec;
  normed3: Vec;
  gate: Vec;
  up: Vec;
  mixed: Vec;
  down: Vec;
  rstd4: Vec;
}

export class TrainableGemma {
  readonly params = new Map<string, Vec>();
  readonly grads = new Map<string, Vec>();
  readonly shapes: ReadonlyMap<string, number[]>;
  /** LoRA adapters by the name of the weight they adapt; with any, the base weights are frozen. */
  readonly adapters = new Map<string, LoraAdapter>();
  private readonly invFreq: Float32Array;
  private readonly embedScale: number;

  constructor(
    readonly config: GemmaConfig,
    readonly kind: ArrayKind = "f32",
    private readonly linear = new Linear(),
  ) {
    if (config.family !== "gemma2")
      throw new ConfigError(`training supports Gemma 2 configs (model_type "gemma2"), found ${config.family}`);
    if (config.activation !== "gelu_tanh") throw new ConfigError("training supports the tanh GELU (gelu_pytorch_tanh) only");
    this.shapes = expectedTensors(config);
    for (const [name, shape] of this.shapes) {
      const size = shape.reduce((a, b) => a * b, 1);
      this.params.set(name, this.alloc(size));
      this.grads.set(name, this.alloc(size));
    }
    this.invFreq = ropeInverseFrequencies(config.headDim, config.rope.global.theta);
    this.embedScale = embeddingNormalizer(config.dModel, "f32");
  }

  /** Random initialisation: normal(0, 0.02) matrices and embedding (as Gemma's init), zero norm weights (gain 1). */
  initRandom(seed: number, std = 0.02): this {
    const rng = new Rng(seed);
    for (const [name, p] of this.params) {
      if (this.shapes.get(name)!.length === 1) p.fill(0);
      else for (let i = 0; i < p.length; i++) p[i] = std * gaussian(rng);
    }
    return this;
  }

  /**
   * Adds LoRA adapters (rank r, scale alpha / r) to the given projections of every layer and
   * freezes the base model: A drawn uniform(±1/sqrt(in)) as PEFT does, B zero, so training starts
   * from the base model's exact outputs.
   */
  addLora(rank: number, alpha: number, targets: readonly string[] = LORA_TARGETS, seed = 1): void {
    const rng = new Rng(seed);
    for (const [name, shape] of this.shapes) {
      const module = /\.(\w+_proj)\.weight$/.exec(name)?.[1];
      if (!module || !targets.includes(module)) continue;
      const [out, inDim] = shape as [number, number];
      const bound = 1 / Math.sqrt(inDim);
      const a = this.alloc(rank * inDim).map(() => bound * (2 * rng.next() - 1));
      this.adapters.set(name, {
        a,
        b: this.alloc(out * rank),
        gradA: this.alloc(rank * inDim),
        gradB: this.alloc(out * rank),
        rank,
        scale: alpha / rank,
      });
    }
  }

  /** Adapter parameters and gradients under PEFT-style names (`<weight>.lora_A` / `.lora_B`). */
  adapterTensors(): { params: Map<string, Vec>; grads: Map<string, Vec>; shapes: Map<string, number[]> } {
    const params = new Map<string, Vec>();
    const grads = new Map<string, Vec>();
    const shapes = new Map<string, number[]>();
    for (const [name, ad] of this.adapters) {
      const [out, inDim] = this.shapes.get(name)! as [number, number];
      const base = name.replace(/\.weight$/, "");
      params.set(`${base}.lora_A`, ad.a).set(`${base}.lora_B`, ad.b);
      grads.set(`${base}.lora_A`, ad.gradA).set(`${base}.lora_B`, ad.gradB);
      shapes.set(`${base}.lora_A`, [ad.rank, inDim]).set(`${base}.lora_B`, [out, ad.rank]);
    }
    return { params, grads, shapes };
  }

  parameterCount(): number {
    let n = 0;
    for (const p of this.params.values()) n += p.length;
    return n;
  }

  /** Starts a step: zero gradients; weights may have changed since the last one. */
  zeroGrads(): void {
    this.linear.weightsChanged();
    for (const g of this.grads.values()) g.fill(0);
    for (const ad of this.adapters.values()) {
      ad.gradA.fill(0);
      ad.gradB.fill(0);
    }
  }

  private get frozen(): boolean {
    return this.adapters.size > 0;
  }

  /** out = x·Wᵀ (+ scale·(x·Aᵀ)·Bᵀ with an adapter, keeping x·Aᵀ for the backward pass). */
  private project(out: Vec, x: Vec, name: string, tokens: number, inDim: number, outDim: number, lowRank: Map<string, Vec>): void {
    this.linear.forward(out, x, this.params.get(name)!, tokens, inDim, outDim);
    const ad = this.adapters.get(name);
    if (!ad) return;
    const xa = this.alloc(tokens * ad.rank);
    this.linear.forward(xa, x, ad.a, tokens, inDim, ad.rank);
    const delta = this.alloc(tokens * outDim);
    this.linear.forward(delta, xa, ad.b, tokens, ad.rank, outDim);
    for (let i = 0; i < delta.length; i++) out[i] = out[i]! + ad.scale * delta[i]!;
    lowRank.set(name, xa);
  }

  private projectBackward(
    dx: Vec,
    dout: Vec,
    x: Vec,
    name: string,
    tokens: number,
    inDim: number,
    outDim: number,
    lowRank: Map<string, Vec>,
  ): void {
    this.linear.backward(dx, this.frozen ? null : this.grads.get(name)!, dout, x, this.params.get(name)!, tokens, inDim, outDim);
    const ad = this.adapters.get(name);
    if (!ad) return;
    const scaled = this.alloc(dout.length);
    for (let i = 0; i < scaled.length; i++) scaled[i] = ad.scale * dout[i]!;
    const dxa = this.alloc(tokens * ad.rank);
    this.linear.backward(dxa, ad.gradB, scaled, lowRank.get(name)!, ad.b, tokens, ad.rank, outDim);
    this.linear.backward(dx, ad.gradA, dxa, x, ad.a, tokens, inDim, ad.rank);
  }

  param(name: string): Vec {
    return this.params.get(name)!;
  }

  /** Soft-capped logits [ids.length, vocab] for a sequence starting at position 0 (no gradient). */
  logits(ids: readonly number[]): Vec {
    return this.forward(ids).logits;
  }

  /**
   * Forward and backward over one sequence; gradients (scaled by `gradScale`) are added to
   * `grads`. Returns the summed losses over the sequence's positions: the weighted total that the
   * gradient follows, and its two terms unweighted (the next-token loss is always measured, so a
   * distilled run's log stays comparable with a next-token run's).
   */
  lossAndBackward(ids: readonly number[], target: SequenceTarget, gradScale: number): SequenceLoss {
    const T = ids.length;
    const V = this.config.vocabSize;
    const { logits, caches, finalNormed, finalRstd, residual } = this.forward(ids);
    const dLogits = this.alloc(T * V);
    const alpha = target.teacher ? (target.alpha ?? 1) : 0;
    const nextToken = crossEntropy(alpha < 1 ? dLogits : null, logits, target.nextTokens, T, V, (1 - alpha) * gradScale, target.mask);
    const distilled = target.teacher ? distillation(alpha > 0 ? dLogits : null, logits, target.teacher, T, V, alpha * gradScale) : null;
    this.backward(ids, dLogits, logits, caches, finalNormed, finalRstd, residual);
    return { total: (1 - alpha) * nextToken + alpha * (distilled ?? 0), nextToken, distillation: distilled };
  }

  /** Summed next-token loss and the number of scored positions, without gradients (evaluation). */
  loss(ids: readonly number[], nextTokens: ArrayLike<number>): number {
    return crossEntropy(null, this.logits(ids), nextTokens, ids.length, this.config.vocabSize);
  }

  private alloc(n: number): Vec {
    return this.kind === "f32" ? new Float32Array(n) : new Float64Array(n);
  }

  private attentionShape(layer: number, tokens: number): AttentionShape {
    const c = this.config;
    return {
      tokens,
      nHeads: c.nHeads,
      nKvHeads: c.nKvHeads,
      headDim: c.headDim,
      scale: c.queryPreAttnScalar ** -0.5,
      softcap: c.attnSoftcap,
      window: c.layerTypes[layer] === "local" ? c.slidingWindow : null,
    };
  }

  private forward(ids: readonly number[]) {
    const c = this.config;
    const T = ids.length;
    if (T > c.maxPositions) throw new ConfigError(`a sequence of ${T} tokens exceeds the model's context of ${c.maxPositions}`);
    const D = c.dModel;
    const qDim = c.nHeads * c.headDim;
    const kvDim = c.nKvHeads * c.headDim;
    const { cos, sin } = ropeTables(T, this.invFreq);
    const p = (name: string) => this.params.get(name)!;
    let x = this.alloc(T * D);
    embeddingForward(x, p("model.embed_tokens.weight"), ids, D, this.embedScale);
    const caches: LayerCache[] = [];
    for (let l = 0; l < c.nLayers; l++) {
      const pre = `model.layers.${l}.`;
      const a = this.attentionShape(l, T);
      const cache: LayerCache = {
        lowRank: new Map(),
        input: x,
        rstd1: this.alloc(T),
        normed1: this.alloc(T * D),
        q: this.alloc(T * qDim),
        k: this.alloc(T * kvDim),
        v: this.alloc(T * kvDim),
        probs: this.alloc(c.nHeads * T * T),
        capped: this.alloc(c.nHeads * T * T),
        attn: this.alloc(T * qDim),
        projected: this.alloc(T * D),
        rstd2: this.alloc(T),
        middle: this.alloc(T * D),
        rstd3: this.alloc(T),
        normed3: this.alloc(T * D),
        gate: this.alloc(T * c.ffnDim),
        up: this.alloc(T * c.ffnDim),
        mixed: this.alloc(T * c.ffnDim),
        down: this.alloc(T * D),
        rstd4: this.alloc(T),
      };
      rmsnormForward(cache.normed1, cache.rstd1, x, p(`${pre}input_layernorm.weight`), T, D, c.rmsNormEps);
      this.project(cache.q, cache.normed1, `${pre}self_attn.q_proj.weight`, T, D, qDim, cache.lowRank);
      this.project(cache.k, cache.normed1, `${pre}self_attn.k_proj.weight`, T, D, kvDim, cache.lowRank);
      this.project(cache.v, cache.normed1, `${pre}self_attn.v_proj.weight`, T, D, kvDim, cache.lowRank);
      rope(cache.q, T, c.nHeads, c.headDim, cos, sin);
      rope(cache.k, T, c.nKvHeads, c.headDim, cos, sin);
      attentionForward(cache.attn, cache.probs, cache.capped, cache.q, cache.k, cache.v, a);
      this.project(cache.projected, cache.attn, `${pre}self_attn.o_proj.weight`, T, qDim, D, cache.lowRank);
      const postAttn = this.alloc(T * D);
      rmsnormForward(postAttn, cache.rstd2, cache.projected, p(`${pre}post_attention_layernorm.weight`), T, D, c.rmsNormEps);
      for (let i = 0; i < T * D; i++) cache.middle[i] = x[i]! + postAttn[i]!;
      rmsnormForward(cache.normed3, cache.rstd3, cache.middle, p(`${pre}pre_feedforward_layernorm.weight`), T, D, c.rmsNormEps);
      this.project(cache.gate, cache.normed3, `${pre}mlp.gate_proj.weight`, T, D, c.ffnDim, cache.lowRank);
      this.project(cache.up, cache.normed3, `${pre}mlp.up_proj.weight`, T, D, c.ffnDim, cache.lowRank);
      gegluForward(cache.mixed, cache.gate, cache.up, T * c.ffnDim);
      this.project(cache.down, cache.mixed, `${pre}mlp.down_proj.weight`, T, c.ffnDim, D, cache.lowRank);
      const postFfn = this.alloc(T * D);
      rmsnormForward(postFfn, cache.rstd4, cache.down, p(`${pre}post_feedforward_layernorm.weight`), T, D, c.rmsNormEps);
      const next = this.alloc(T * D);
      for (let i = 0; i < T * D; i++) next[i] = cache.middle[i]! + postFfn[i]!;
      caches.push(cache);
      x = next;
    }
    const finalNormed = this.alloc(T * D);
    const finalRstd = this.alloc(T);
    rmsnormForward(finalNormed, finalRstd, x, p("model.norm.weight"), T, D, c.rmsNormEps);
    const logits = this.alloc(T * c.vocabSize);
    this.linear.forward(logits, finalNormed, p("model.embed_tokens.weight"), T, D, c.vocabSize);
    if (c.finalSoftcap !== null) softcapForward(logits, logits.length, c.finalSoftcap);
    return { logits, caches, finalNormed, finalRstd, residual: x };
  }

  private backward(
    ids: readonly number[],
    dLogits: Vec,
    logits: Vec,
    caches: LayerCache[],
    finalNormed: Vec,
    finalRstd: Vec,
    residual: Vec,
  ): void {
    const c = this.config;
    const T = ids.length;
    const D = c.dModel;
    const qDim = c.nHeads * c.headDim;
    const kvDim = c.nKvHeads * c.headDim;
    const { cos, sin } = ropeTables(T, this.invFreq);
    const p = (name: string) => this.params.get(name)!;
    const g = (name: string) => this.grads.get(name)!;
    if (c.finalSoftcap !== null) softcapBackward(dLogits, logits, dLogits.length, c.finalSoftcap);
    const dFinal = this.alloc(T * D);
    this.linear.backward(
      dFinal,
      this.frozen ? null : g("model.embed_tokens.weight"),
      dLogits,
      finalNormed,
      p("model.embed_tokens.weight"),
      T,
      D,
      c.vocabSize,
    );
    let dx = this.alloc(T * D);
    rmsnormBackward(dx, g("model.norm.weight"), dFinal, residual, p("model.norm.weight"), finalRstd, T, D);

    for (let l = c.nLayers - 1; l >= 0; l--) {
      const pre = `model.layers.${l}.`;
      const cache = caches[l]!;
      // x_out = middle + postnorm(down): dx flows to middle and through the post-FFN norm.
      const dMiddle = Float64Array.from(dx) as Vec;
      const dDown = this.alloc(T * D);
      rmsnormBackward(
        dDown,
        g(`${pre}post_feedforward_layernorm.weight`),
        dx,
        cache.down,
        p(`${pre}post_feedforward_layernorm.weight`),
        cache.rstd4,
        T,
        D,
      );
      const dMixed = this.alloc(T * c.ffnDim);
      this.projectBackward(dMixed, dDown, cache.mixed, `${pre}mlp.down_proj.weight`, T, c.ffnDim, D, cache.lowRank);
      const dGate = this.alloc(T * c.ffnDim);
      const dUp = this.alloc(T * c.ffnDim);
      gegluBackward(dGate, dUp, dMixed, cache.gate, cache.up, T * c.ffnDim);
      const dNormed3 = this.alloc(T * D);
      this.projectBackward(dNormed3, dGate, cache.normed3, `${pre}mlp.gate_proj.weight`, T, D, c.ffnDim, cache.lowRank);
      this.projectBackward(dNormed3, dUp, cache.normed3, `${pre}mlp.up_proj.weight`, T, D, c.ffnDim, cache.lowRank);
      rmsnormBackward(
        dMiddle,
        g(`${pre}pre_feedforward_layernorm.weight`),
        dNormed3,
        cache.middle,
        p(`${pre}pre_feedforward_layernorm.weight`),
        cache.rstd3,
        T,
        D,
      );
      // middle = input + postnorm(projected)
      const dInput = Float64Array.from(dMiddle) as Vec;
      const dProjected = this.alloc(T * D);
      rmsnormBackward(
        dProjected,
        g(`${pre}post_attention_layernorm.weight`),
        dMiddle,
        cache.projected,
        p(`${pre}post_attention_layernorm.weight`),
        cache.rstd2,
        T,
        D,
      );
      const dAttn = this.alloc(T * qDim);
      this.projectBackward(dAttn, dProjected, cache.attn, `${pre}self_attn.o_proj.weight`, T, qDim, D, cache.lowRank);
      const dq = this.alloc(T * qDim);
      const dk = this.alloc(T * kvDim);
      const dv = this.alloc(T * kvDim);
      attentionBackward(dq, dk, dv, dAttn, cache.probs, cache.capped, cache.q, cache.k, cache.v, this.attentionShape(l, T));
      rope(dq, T, c.nHeads, c.headDim, cos, sin, true);
      rope(dk, T, c.nKvHeads, c.headDim, cos, sin, true);
      const dNormed1 = this.alloc(T * D);
      this.projectBackward(dNormed1, dq, cache.normed1, `${pre}self_attn.q_proj.weight`, T, D, qDim, cache.lowRank);
      this.projectBackward(dNormed1, dk, cache.normed1, `${pre}self_attn.k_proj.weight`, T, D, kvDim, cache.lowRank);
      this.projectBackward(dNormed1, dv, cache.normed1, `${pre}self_attn.v_proj.weight`, T, D, kvDim, cache.lowRank);
      rmsnormBackward(
        dInput,
        g(`${pre}input_layernorm.weight`),
        dNormed1,
        cache.input,
        p(`${pre}input_layernorm.weight`),
        cache.rstd1,
        T,
        D,
      );
      dx = this.kind === "f32" ? Float32Array.from(dInput) : dInput;
    }
    if (!this.frozen) embeddingBackward(g("model.embed_tokens.weight"), dx, ids, D, this.embedScale);
  }
}

function gaussian(rng: Rng): number {
  return Math.sqrt(-2 * Math.log(1 - rng.next())) * Math.cos(2 * Math.PI * rng.next());
}
