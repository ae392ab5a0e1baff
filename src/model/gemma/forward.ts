/**
 * The Gemma 2 / Gemma 1 forward pass (GEMMA2.md §2, §4), written once over the kernel interface.
 * Branches only on config fields: sandwichNorms, layerTypes, soft-caps.
 */
import type { Kernels } from "../../backend/kernels.js";
import type { GemmaConfig } from "./config.js";
import { GenerationError } from "../../errors.js";
import { f32ToBf16, bf16ToF32, f16ToF32, f32ToF16 } from "../../weights/dtype.js";
import type { CausalLM, DecodeState, StateOptions } from "../causal-lm.js";
import { KvCache } from "../kv-cache.js";
import { outputLogits } from "../output-head.js";
import { ropeInverseFrequencies } from "../rope.js";
import type { GemmaWeights, LayerWeights } from "./weights.js";

/** Which dtype sqrt(dModel) is rounded to (§2.1): f32 matches HF in fp32; bf16 matches a bf16 run. */
export type NormalizerDtype = "f32" | "bf16" | "f16";

export interface ForwardOptions {
  normalizerDtype?: NormalizerDtype;
}

export class GemmaForward implements CausalLM {
  private readonly invFreq: Float32Array;
  readonly embedScale: number;

  constructor(
    readonly config: GemmaConfig,
    readonly weights: GemmaWeights,
    readonly kernels: Kernels,
    options: ForwardOptions = {},
  ) {
    this.invFreq = ropeInverseFrequencies(config.headDim, config.ropeTheta);
    this.embedScale = embeddingNormalizer(config.dModel, options.normalizerDtype ?? "f32");
  }

  /** A KV cache for this model: full rows on global layers, a ring of the window on local ones. */
  createState(options: StateOptions = {}): KvCache {
    return new KvCache(this.config, options);
  }

  /**
   * Runs `ids` at positions cache.length... (or 0... without a cache) and returns logits after the
   * final soft-cap: [ids.length, vocab] for "all", [vocab] for "last". Appends to the cache.
   */
  forward(ids: readonly number[], state: DecodeState | null, logitsFor: "all" | "last"): Float32Array {
    if (state !== null && !(state instanceof KvCache)) throw new GenerationError("a Gemma model needs a KvCache as its decode state");
    const cache = state;
    const c = this.config;
    const k = this.kernels;
    const seqLen = ids.length;
    const startPos = cache?.length ?? 0;
    if (seqLen === 0) throw new GenerationError("forward needs at least one token");
    if (startPos + seqLen > c.maxPositions) {
      throw new GenerationError(`sequence of ${startPos + seqLen} tokens exceeds the model's context of ${c.maxPositions} positions`);
    }
    for (const id of ids) {
      if (!Number.isInteger(id) || id < 0 || id >= c.vocabSize)
        throw new GenerationError(`token id ${id} is outside the vocabulary of ${c.vocabSize}`);
    }
    const h = new Float32Array(seqLen * c.dModel);
    k.embed(h, this.weights.embedding, ids, this.embedScale);
    const scratch = new LayerScratch(c, seqLen);
    for (let i = 0; i < c.nLayers; i++) this.layer(i, this.weights.layers[i]!, h, scratch, cache, startPos);
    if (cache) cache.length = startPos + seqLen;

    return outputLogits(k, c, h, seqLen, logitsFor, this.weights.finalNorm, this.weights.embedding);
  }

  private layer(index: number, w: LayerWeights, h: Float32Array, s: LayerScratch, cache: KvCache | null, startPos: number): void {
    const c = this.config;
    const k = this.kernels;
    const { seqLen } = s;
    const residualSize = seqLen * c.dModel;

    k.rmsnorm(s.normed, h, w.inputNorm, seqLen, c.dModel, c.rmsNormEps);
    k.matmul(s.q, s.normed, w.q, seqLen);
    k.matmul(s.k, s.normed, w.k, seqLen);
    k.matmul(s.v, s.normed, w.v, seqLen);
    k.rope(s.q, seqLen, c.nHeads, c.headDim, startPos, this.invFreq);
    k.rope(s.k, seqLen, c.nKvHeads, c.headDim, startPos, this.invFreq);
    const layerKv = cache?.layers[index];
    const window = c.layerTypes[index] === "local" ? c.slidingWindow : null;
    k.attention({
      out: s.attn,
      q: s.q,
      newK: s.k,
      newV: s.v,
      pastK: layerKv?.k ?? s.k,
      pastV: layerKv?.v ?? s.v,
      pastCapacity: layerKv?.ringSize ?? 1,
      startPos,
      seqLen,
      nHeads: c.nHeads,
      nKvHeads: c.nKvHeads,
      headDim: c.headDim,
      scale: c.queryPreAttnScalar ** -0.5,
      softcap: c.attnSoftcap,
      window,
    });
    // Written after attention so a long prefill never overwrites ring rows its own queries still read.
    layerKv?.write(s.k, s.v, startPos, seqLen);
    k.matmul(s.out, s.attn, w.o, seqLen);
    if (w.postAttentionNorm) k.rmsnorm(s.out, s.out, w.postAttentionNorm, seqLen, c.dModel, c.rmsNormEps);
    k.addInPlace(h, s.out, residualSize);

    k.rmsnorm(s.normed, h, w.preFeedforwardNorm, seqLen, c.dModel, c.rmsNormEps);
    k.matmul(s.gate, s.normed, w.gate, seqLen);
    k.matmul(s.up, s.normed, w.up, seqLen);
    k.geglu(s.gate, s.gate, s.up, seqLen * c.ffnDim, c.activation);
    k.matmul(s.out, s.gate, w.down, seqLen);
    if (w.postFeedforwardNorm) k.rmsnorm(s.out, s.out, w.postFeedforwardNorm, seqLen, c.dModel, c.rmsNormEps);
    k.addInPlace(h, s.out, residualSize);
  }
}

/** Activations of one layer, planned once per forward call and reused by every layer. */
class LayerScratch {
  readonly normed: Float32Array;
  readonly q: Float32Array;
  readonly k: Float32Array;
  readonly v: Float32Array;
  readonly attn: Float32Array;
  readonly out: Float32Array;
  readonly gate: Float32Array;
  readonly up: Float32Array;

  constructor(
    c: GemmaConfig,
    readonly seqLen: number,
  ) {
    this.normed = new Float32Array(seqLen * c.dModel);
    this.q = new Float32Array(seqLen * c.nHeads * c.headDim);
    this.k = new Float32Array(seqLen * c.nKvHeads * c.headDim);
    this.v = new Float32Array(seqLen * c.nKvHeads * c.headDim);
    this.attn = new Float32Array(seqLen * c.nHeads * c.headDim);
    this.out = new Float32Array(seqLen * c.dModel);
    this.gate = new Float32Array(seqLen * c.ffnDim);
    this.up = new Float32Array(seqLen * c.ffnDim);
  }
}

/** sqrt(dModel) rounded to the activation dtype, as both references build it (§2.1, pitfall 3). */
export function embeddingNormalizer(dModel: number, dtype: NormalizerDtype): number {
  const value = Math.sqrt(dModel);
  if (dtype === "bf16") return bf16ToF32(f32ToBf16(value));
  if (dtype === "f16") return f16ToF32(f32ToF16(value));
  return Math.fround(value);
}
