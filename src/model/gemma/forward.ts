/**
 * The forward pass of the Gemma decoders (GEMMA2.md §2, §4; docs/spec/GEMMA3-4.md), written once
 * over the kernel interface. Branches only on config fields: sandwichNorms, layerTypes, soft-caps,
 * QK/value norms, per-layer shapes and KV sources, per-layer inputs, experts, layer scalars.
 */
import type { Kernels } from "../../backend/kernels.js";
import type { GemmaConfig } from "./config.js";
import { GenerationError } from "../../errors.js";
import { f32ToBf16, bf16ToF32, f16ToF32, f32ToF16 } from "../../weights/dtype.js";
import type { CausalLM, DecodeState, StateOptions } from "../causal-lm.js";
import { KvCache } from "../kv-cache.js";
import { outputLogits } from "../output-head.js";
import { layerRopeFrequencies } from "../rope.js";
import { mixtureOfExperts } from "./experts.js";
import type { GemmaWeights, LayerWeights } from "./weights.js";

/**
 * Tokens of one sequence per pass through the layers when a cache carries the keys between
 * passes: a longer prompt runs in chunks, so its activations (about 125 KB a token on a 2B, plus
 * the kernels' scratch) stay those of 128 tokens. A 512-token prompt peaked 80 MiB higher without.
 */
export const PROMPT_CHUNK = 128;

/** Which dtype sqrt(dModel) is rounded to (§2.1): f32 matches HF in fp32; bf16 matches a bf16 run. */
export type NormalizerDtype = "f32" | "bf16" | "f16";

export interface ForwardOptions {
  normalizerDtype?: NormalizerDtype;
}

/** Keys and values a layer computed in this call, kept for the later layers that share them. */
interface SharedKv {
  k: Float32Array;
  v: Float32Array;
}

/** One sequence's tokens within a call: rows [offset, offset + length) of the activations. */
interface Segment {
  offset: number;
  length: number;
  startPos: number;
  cache: KvCache | null;
}

export class GemmaForward implements CausalLM {
  private readonly invFreq: Float32Array[];
  readonly embedScale: number;
  private readonly perLayerScale: number;
  /** Unit gains for the norms without weights (Gemma 4's value norm), by width. */
  private readonly unitGains = new Map<number, Float32Array>();
  /** Layers whose keys and values later layers read (their cache write waits until those have attended). */
  private readonly sharedSources: Set<number>;
  /** The activations' arrays, reused by every pass that fits (scratchFor). */
  private plan: LayerScratch | null = null;

  constructor(
    readonly config: GemmaConfig,
    readonly weights: GemmaWeights,
    readonly kernels: Kernels,
    options: ForwardOptions = {},
  ) {
    // One array per distinct setting: the rope kernel reuses its angle table across the layers sharing one.
    const distinct = new Map<string, Float32Array>();
    this.invFreq = config.layers.map((shape, i) => {
      const setting = config.rope[config.layerTypes[i]!];
      const key = JSON.stringify([setting, shape.headDim]);
      if (!distinct.has(key)) distinct.set(key, layerRopeFrequencies(setting, shape.headDim));
      return distinct.get(key)!;
    });
    const dtype = options.normalizerDtype ?? "f32";
    this.embedScale = embeddingNormalizer(config.dModel, dtype);
    this.perLayerScale = config.perLayerInput ? embeddingNormalizer(config.perLayerInput.dim, dtype) : 1;
    this.sharedSources = new Set(config.layers.filter((l, i) => l.kvSource !== i).map((l) => l.kvSource));
  }

  /** A KV cache for this model: full rows on global layers, a ring of the window on local ones, none on KV-sharing layers. */
  createState(options: StateOptions = {}): KvCache {
    return new KvCache(this.config, options, this.kernels.kvStorage);
  }

  /**
   * Runs `ids` at positions cache.length... (or 0... without a cache) and returns logits after the
   * final soft-cap: [ids.length, vocab] for "all", [vocab] for "last". Appends to the cache.
   */
  forward(ids: readonly number[], state: DecodeState | null, logitsFor: "all" | "last"): Float32Array {
    if (state === null || ids.length <= PROMPT_CHUNK) return this.run([{ ids, state }], logitsFor)[0]!;
    // All checked before the first chunk advances the cache.
    this.check(ids, state);
    const vocab = this.config.vocabSize;
    const all = logitsFor === "all" ? new Float32Array(ids.length * vocab) : null;
    let last: Float32Array = new Float32Array(0);
    for (let at = 0; at < ids.length; at += PROMPT_CHUNK) {
      const chunk = ids.slice(at, at + PROMPT_CHUNK);
      const final = at + chunk.length === ids.length;
      const logits = this.run([{ ids: chunk, state }], all ? "all" : final ? "last" : "none")[0]!;
      if (all) all.set(logits, at * vocab);
      else if (final) last = logits;
    }
    return all ?? last;
  }

  /**
   * Several sequences at once (batched decoding): one pass over all their new tokens, so every
   * matmul is one GEMM over the batch; attention and the cache stay per sequence. Returns each
   * sequence's logits after its last token.
   */
  forwardBatch(items: readonly { ids: readonly number[]; state: DecodeState }[]): Float32Array[] {
    return this.run(items, "last");
  }

  /** logitsFor "none": the cache is filled, no output head runs (an earlier chunk of a prompt). */
  private run(items: readonly { ids: readonly number[]; state: DecodeState | null }[], logitsFor: "all" | "last" | "none"): Float32Array[] {
    const c = this.config;
    const k = this.kernels;
    const segments: Segment[] = [];
    let rows = 0;
    for (const { ids, state } of items) {
      const cache = this.check(ids, state);
      const startPos = cache?.length ?? 0;
      segments.push({ offset: rows, length: ids.length, startPos, cache });
      rows += ids.length;
    }
    const allIds = items.length === 1 ? items[0]!.ids : items.flatMap((item) => item.ids);
    const scratch = this.scratchFor(rows);
    const h = scratch.hidden;
    k.embed(h, this.weights.embedding, allIds, this.embedScale);
    const perLayer = this.perLayerInputs(allIds, h);
    const shared = new Map<number, SharedKv>();
    for (let i = 0; i < c.nLayers; i++) {
      this.layer(i, this.weights.layers[i]!, h, scratch, segments, shared);
      if (perLayer) this.perLayerInput(i, h, perLayer, scratch);
      const scalar = this.weights.layers[i]!.scalar;
      if (scalar !== 1) for (let j = 0; j < h.length; j++) h[j]! *= scalar;
    }
    for (const seg of segments) {
      if (!seg.cache) continue;
      for (const [source, kv] of shared) {
        const layerKv = seg.cache.layers[source]!;
        layerKv.write(rowsOf(kv.k, seg, layerKv.rowWidth), rowsOf(kv.v, seg, layerKv.rowWidth), seg.startPos, seg.length);
      }
      seg.cache.length = seg.startPos + seg.length;
    }

    const { finalNorm, embedding } = this.weights;
    if (logitsFor === "none") return [];
    if (logitsFor === "all") {
      if (segments.length !== 1) throw new GenerationError("logits of every position are for one sequence at a time");
      return [outputLogits(k, c, h, rows, "all", finalNorm, embedding)];
    }
    // Each sequence's last row, through the output head together.
    const last = new Float32Array(segments.length * c.dModel);
    for (const [i, seg] of segments.entries())
      last.set(h.subarray((seg.offset + seg.length - 1) * c.dModel, (seg.offset + seg.length) * c.dModel), i * c.dModel);
    const logits = outputLogits(k, c, last, segments.length, "all", finalNorm, embedding);
    return segments.map((_, i) => logits.subarray(i * c.vocabSize, (i + 1) * c.vocabSize));
  }

  /**
   * Activations for a pass of `rows` tokens: views of one plan kept across calls (llm.c's "memory
   * planned once"), grown up to a prompt chunk, so decode steps and chunks leave nothing to the GC;
   * a larger pass (a whole prompt without a cache) gets arrays of its own.
   */
  private scratchFor(rows: number): LayerScratch {
    if (rows > PROMPT_CHUNK) return new LayerScratch(this.config, rows);
    if (!this.plan || this.plan.seqLen < rows) {
      this.plan = new LayerScratch(this.config, Math.min(PROMPT_CHUNK, Math.max(rows, 2 * (this.plan?.seqLen ?? 0))));
    }
    return new LayerScratch(this.config, rows, this.plan);
  }

  /** `ids` may run on `state`: a KvCache (or none), tokens in the vocabulary, room in the context. */
  private check(ids: readonly number[], state: DecodeState | null): KvCache | null {
    const c = this.config;
    if (state !== null && !(state instanceof KvCache)) throw new GenerationError("a Gemma model needs a KvCache as its decode state");
    const startPos = state?.length ?? 0;
    if (ids.length === 0) throw new GenerationError("forward needs at least one token");
    if (startPos + ids.length > c.maxPositions) {
      throw new GenerationError(`sequence of ${startPos + ids.length} tokens exceeds the model's context of ${c.maxPositions} positions`);
    }
    for (const id of ids) {
      if (!Number.isInteger(id) || id < 0 || id >= c.vocabSize)
        throw new GenerationError(`token id ${id} is outside the vocabulary of ${c.vocabSize}`);
    }
    return state;
  }

  private layer(
    index: number,
    w: LayerWeights,
    h: Float32Array,
    s: LayerScratch,
    segments: readonly Segment[],
    shared: Map<number, SharedKv>,
  ): void {
    const c = this.config;
    const k = this.kernels;
    const { seqLen } = s;
    const { headDim, nKvHeads, kvSource } = c.layers[index]!;
    const residualSize = seqLen * c.dModel;
    const qWidth = c.nHeads * headDim;
    const kvWidth = nKvHeads * headDim;
    const q = s.q.subarray(0, seqLen * qWidth);
    const attn = s.attn.subarray(0, q.length);

    k.rmsnorm(s.normed, h, w.inputNorm, seqLen, c.dModel, c.rmsNormEps);
    k.matmul(q, s.normed, w.q, seqLen);
    if (w.qNorm) k.rmsnorm(q, q, w.qNorm, seqLen * c.nHeads, headDim, c.rmsNormEps);
    for (const seg of segments) k.rope(rowsOf(q, seg, qWidth), seg.length, c.nHeads, headDim, seg.startPos, this.invFreq[index]!);
    const { k: keys, v: values } = kvSource === index ? this.keysAndValues(index, w, s, segments) : shared.get(kvSource)!;
    for (const seg of segments) {
      const layerKv = seg.cache?.layers[kvSource];
      const segKeys = rowsOf(keys, seg, kvWidth);
      const segValues = rowsOf(values, seg, kvWidth);
      k.attention({
        out: rowsOf(attn, seg, qWidth),
        q: rowsOf(q, seg, qWidth),
        newK: segKeys,
        newV: segValues,
        pastK: layerKv?.k ?? segKeys,
        pastV: layerKv?.v ?? segValues,
        pastCapacity: layerKv?.ringSize ?? 1,
        startPos: seg.startPos,
        seqLen: seg.length,
        nHeads: c.nHeads,
        nKvHeads,
        headDim,
        scale: c.queryPreAttnScalar ** -0.5,
        softcap: c.attnSoftcap,
        window: c.layerTypes[index] === "local" ? c.slidingWindow : null,
      });
      // Written after attention so a long prefill never overwrites ring rows its own queries still
      // read; a shared source writes once every layer reading it has attended (run()).
      if (kvSource === index && !this.sharedSources.has(index)) layerKv?.write(segKeys, segValues, seg.startPos, seg.length);
    }
    if (this.sharedSources.has(index)) shared.set(index, { k: keys.slice(), v: values.slice() });
    k.matmul(s.out, attn, w.o, seqLen);
    if (w.postAttentionNorm) k.rmsnorm(s.out, s.out, w.postAttentionNorm, seqLen, c.dModel, c.rmsNormEps);
    k.addInPlace(h, s.out, residualSize);

    const ffn = c.layers[index]!.ffnDim;
    const gate = s.gate.subarray(0, seqLen * ffn);
    const up = s.up.subarray(0, seqLen * ffn);
    k.rmsnorm(s.normed, h, w.preFeedforwardNorm, seqLen, c.dModel, c.rmsNormEps);
    k.matmul(gate, s.normed, w.gate, seqLen);
    k.matmul(up, s.normed, w.up, seqLen);
    k.geglu(gate, gate, up, seqLen * ffn, c.activation);
    k.matmul(s.out, gate, w.down, seqLen);
    if (w.moe) {
      // Gemma 4: the experts read the residual stream beside the dense MLP; both outputs are normed and summed.
      k.rmsnorm(s.out, s.out, w.moe.postDenseNorm, seqLen, c.dModel, c.rmsNormEps);
      mixtureOfExperts(k, c, w.moe, h, seqLen, s.experts, this.unitGain(c.dModel));
      k.rmsnorm(s.experts, s.experts, w.moe.postExpertsNorm, seqLen, c.dModel, c.rmsNormEps);
      k.addInPlace(s.out, s.experts, residualSize);
    }
    if (w.postFeedforwardNorm) k.rmsnorm(s.out, s.out, w.postFeedforwardNorm, seqLen, c.dModel, c.rmsNormEps);
    k.addInPlace(h, s.out, residualSize);
  }

  /** Keys (QK-normed, rotated) and values (value-normed) of a layer that computes its own. */
  private keysAndValues(index: number, w: LayerWeights, s: LayerScratch, segments: readonly Segment[]): SharedKv {
    const c = this.config;
    const k = this.kernels;
    const { headDim, nKvHeads } = c.layers[index]!;
    const rows = s.seqLen * nKvHeads;
    const keys = s.k.subarray(0, rows * headDim);
    const values = s.v.subarray(0, rows * headDim);
    k.matmul(keys, s.normed, w.k!, s.seqLen);
    // attention_k_eq_v: the values are the key projection before its norm and rotation.
    if (w.v) k.matmul(values, s.normed, w.v, s.seqLen);
    else values.set(keys);
    if (w.kNorm) k.rmsnorm(keys, keys, w.kNorm, rows, headDim, c.rmsNormEps);
    if (c.valueNorm) k.rmsnorm(values, values, this.unitGain(headDim), rows, headDim, c.rmsNormEps);
    for (const seg of segments)
      k.rope(rowsOf(keys, seg, nKvHeads * headDim), seg.length, nKvHeads, headDim, seg.startPos, this.invFreq[index]!);
    return { k: keys, v: values };
  }

  /**
   * Gemma 4's per-layer inputs [seqLen, nLayers, dim]: the token's row of the packed table (scaled
   * by sqrt(dim)) plus the RMS-normed projection of the scaled embedding, times 1/sqrt(2).
   */
  private perLayerInputs(ids: readonly number[], embedded: Float32Array): Float32Array | null {
    const c = this.config;
    const w = this.weights.perLayerInput;
    if (!c.perLayerInput || !w) return null;
    const k = this.kernels;
    const { dim } = c.perLayerInput;
    const packed = c.nLayers * dim;
    for (const id of ids) {
      if (id >= c.perLayerInput.vocabSize)
        throw new GenerationError(`token id ${id} is outside the per-layer input vocabulary of ${c.perLayerInput.vocabSize}`);
    }
    const fromTokens = new Float32Array(ids.length * packed);
    k.embed(fromTokens, w.embedding, ids, this.perLayerScale);
    const projected = new Float32Array(ids.length * packed);
    k.matmul(projected, embedded, w.projection, ids.length);
    const projectionScale = Math.fround(c.dModel ** -0.5);
    for (let j = 0; j < projected.length; j++) projected[j]! *= projectionScale;
    k.rmsnorm(projected, projected, w.norm, ids.length * c.nLayers, dim, c.rmsNormEps);
    const combineScale = Math.fround(2 ** -0.5);
    for (let j = 0; j < projected.length; j++) projected[j] = (projected[j]! + fromTokens[j]!) * combineScale;
    return projected;
  }

  /** h += norm(projection(gelu(gate·h) ⊙ layer i's per-layer input)). */
  private perLayerInput(index: number, h: Float32Array, inputs: Float32Array, s: LayerScratch): void {
    const c = this.config;
    const k = this.kernels;
    const w = this.weights.layers[index]!.perLayer!;
    const { dim } = c.perLayerInput!;
    const { seqLen } = s;
    const gated = s.perLayerGate;
    const own = s.perLayerOwn;
    for (let t = 0; t < seqLen; t++) own.set(inputs.subarray((t * c.nLayers + index) * dim, (t * c.nLayers + index + 1) * dim), t * dim);
    k.matmul(gated, h, w.gate, seqLen);
    k.geglu(gated, gated, own, seqLen * dim, c.activation);
    k.matmul(s.out, gated, w.projection, seqLen);
    k.rmsnorm(s.out, s.out, w.norm, seqLen, c.dModel, c.rmsNormEps);
    k.addInPlace(h, s.out, seqLen * c.dModel);
  }

  private unitGain(width: number): Float32Array {
    const held = this.unitGains.get(width);
    if (held) return held;
    const gain = new Float32Array(width).fill(1);
    this.unitGains.set(width, gain);
    return gain;
  }
}

/** A segment's rows of a [rows, width] activation. */
function rowsOf(a: Float32Array, seg: Segment, width: number): Float32Array {
  return a.subarray(seg.offset * width, (seg.offset + seg.length) * width);
}

/**
 * The activations of a pass: the residual stream and one layer's intermediates (for the widest
 * layer), reused by every layer. `within`: views of a larger plan's arrays instead of new ones.
 */
class LayerScratch {
  readonly hidden: Float32Array;
  readonly normed: Float32Array;
  readonly q: Float32Array;
  readonly k: Float32Array;
  readonly v: Float32Array;
  readonly attn: Float32Array;
  readonly out: Float32Array;
  readonly gate: Float32Array;
  readonly up: Float32Array;
  readonly experts: Float32Array;
  readonly perLayerGate: Float32Array;
  readonly perLayerOwn: Float32Array;

  constructor(
    c: GemmaConfig,
    readonly seqLen: number,
    within?: LayerScratch,
  ) {
    const widest = (f: (l: GemmaConfig["layers"][number]) => number) => Math.max(...c.layers.map(f));
    const take = (floats: number, name: keyof LayerScratch) => {
      const from = within?.[name];
      return from instanceof Float32Array ? from.subarray(0, floats) : new Float32Array(floats);
    };
    const perLayer = c.perLayerInput?.dim ?? 0;
    const qWidth = c.nHeads * widest((l) => l.headDim);
    const kvWidth = widest((l) => l.nKvHeads * l.headDim);
    const ffn = widest((l) => l.ffnDim);
    this.hidden = take(seqLen * c.dModel, "hidden");
    this.normed = take(seqLen * c.dModel, "normed");
    this.q = take(seqLen * qWidth, "q");
    this.k = take(seqLen * kvWidth, "k");
    this.v = take(seqLen * kvWidth, "v");
    this.attn = take(seqLen * qWidth, "attn");
    this.out = take(seqLen * c.dModel, "out");
    this.gate = take(seqLen * ffn, "gate");
    this.up = take(seqLen * ffn, "up");
    this.experts = take(c.moe ? seqLen * c.dModel : 0, "experts");
    this.perLayerGate = take(seqLen * perLayer, "perLayerGate");
    this.perLayerOwn = take(seqLen * perLayer, "perLayerOwn");
  }
}

/** sqrt(dModel) rounded to the activation dtype, as both references build it (§2.1, pitfall 3). */
export function embeddingNormalizer(dModel: number, dtype: NormalizerDtype): number {
  const value = Math.sqrt(dModel);
  if (dtype === "bf16") return bf16ToF32(f32ToBf16(value));
  if (dtype === "f16") return f16ToF32(f32ToF16(value));
  return Math.fround(value);
}
