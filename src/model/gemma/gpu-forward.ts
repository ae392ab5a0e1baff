/**
 * The Gemma forward pass on WebGPU (Gemma 1 to 4): the weights uploaded once in their
 * stored layout, the KV cache in device buffers (a ring of the window on local layers, as on the
 * CPU), every dispatch of a call encoded into one command buffer, and only the logits read back.
 * It is asynchronous (`forwardAsync`): WebGPU returns results through a promise.
 */
import type { Weight } from "../../backend/kernels.js";
import { gridFor, uniforms } from "../../backend/webgpu/runner.js";
import {
  ADD,
  ATTENTION,
  COMBINE_EXPERTS,
  embedShader,
  expertMatmulShader,
  GEGLU,
  MATMUL_TOKEN_TILE,
  MAX_TOP_K,
  matmulShader,
  RMSNORM,
  ROPE,
  ropeTable,
  SCALE,
  SCALE_CHANNELS,
  SLICE,
  SOFTCAP,
  TOP_K,
  type ShaderFeatures,
  shaderFeatures,
} from "../../backend/webgpu/shaders.js";
import { ConfigError, GenerationError } from "../../errors.js";
import type { CausalLM, DecodeState, StateOptions } from "../causal-lm.js";
import { KvCache } from "../kv-cache.js";
import { layerRopeFrequencies } from "../rope.js";
import type { GemmaConfig } from "./config.js";
import { embeddingNormalizer } from "./forward.js";
import type { GemmaWeights, MoeWeights } from "./weights.js";

/** Room for any dispatch's parameters (attention's twelve words are the most). */
const UNIFORM_BYTES = 64;

/** Prompt tokens per pass by default: bounds the attention scores (tokens × heads × positions) of one pass. */
const PROMPT_CHUNK = 256;

export interface GpuForwardOptions {
  /** The largest weight buffer, in bytes; larger matrices are split by rows (default: the device's binding and buffer limits). */
  maxBindingBytes?: number;
  /** Prompt tokens per forward pass; longer prompts run in passes of this many (default 256). */
  promptChunk?: number;
}

/** Storage buffers' usage; read when a buffer is made (GPUBufferUsage is a global only where WebGPU is). */
const storage = () => GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC;

/** A KV cache whose rows live in device buffers (the ring logic and rewinds are KvCache's). */
export class GpuKvCache extends KvCache {
  readonly buffers: { k: GPUBuffer; v: GPUBuffer }[];

  constructor(device: GPUDevice, config: GemmaConfig, options: StateOptions = {}) {
    super(config, options);
    // Each layer's whole ring up front: growing a device buffer means a copy per step.
    this.buffers = this.layers.map((layer) => {
      const size = Math.max(4, layer.ringSize * layer.rowWidth * 4);
      return { k: device.createBuffer({ size, usage: storage() }), v: device.createBuffer({ size, usage: storage() }) };
    });
  }

  override bytes(): number {
    return this.buffers.reduce((sum, b) => sum + b.k.size + b.v.size, 0);
  }

  destroy(): void {
    for (const b of this.buffers) {
      b.k.destroy();
      b.v.destroy();
    }
  }
}

/** Why a config cannot run on this forward yet, or null. */
export function gpuUnsupported(c: GemmaConfig): string | null {
  if (c.moe && c.moe.topK > MAX_TOP_K) return `more than ${MAX_TOP_K} experts per token are not on WebGPU`;
  return null;
}

/** A matrix on the device in buffers of consecutive rows (one unless it exceeds a binding); only its shape and type stay on the CPU. */
interface GpuWeight {
  parts: { buffer: GPUBuffer; start: number; rows: number }[];
  w: Pick<Weight, "dtype" | "rows" | "cols">;
}

interface GpuLayer {
  inputNorm: GPUBuffer;
  postAttentionNorm: GPUBuffer | null;
  preFeedforwardNorm: GPUBuffer;
  postFeedforwardNorm: GPUBuffer | null;
  qNorm: GPUBuffer | null;
  kNorm: GPUBuffer | null;
  q: GpuWeight;
  /** Null on a layer that reads an earlier layer's keys and values (KV sharing). */
  k: GpuWeight | null;
  /** Null where the values are the key projection (attention_k_eq_v) or shared. */
  v: GpuWeight | null;
  o: GpuWeight;
  gate: GpuWeight;
  up: GpuWeight;
  down: GpuWeight;
  invFreq: Float32Array;
  /** Gemma 4's per-layer input block: gate [dim, d], projection [d, dim], its norm. */
  perLayer: { gate: GpuWeight; projection: GpuWeight; norm: GPUBuffer } | null;
  /** Gemma 4's layer scalar (1 elsewhere). */
  scalar: number;
  moe: GpuExperts | null;
}

/** Gemma 4's mixture-of-experts block: the experts' matrices stacked by rows (a part holds whole experts). */
interface GpuExperts {
  router: GpuWeight;
  routerScale: GPUBuffer;
  perExpertScale: GPUBuffer;
  gate: GpuWeight;
  up: GpuWeight;
  down: GpuWeight;
  preNorm: GPUBuffer;
  postDenseNorm: GPUBuffer;
  postExpertsNorm: GPUBuffer;
}

export class GpuGemmaForward implements CausalLM {
  private readonly pipelines = new Map<string, GPUComputePipeline>();
  /** Every dispatch's parameters of one call, each in its own aligned slot: one buffer for the model, written once per call. */
  private readonly uniformSlots: GPUBuffer;
  /** Their staging copy on the CPU, filled while a call is encoded (encoding never awaits, so calls cannot interleave here). */
  private readonly params: Uint8Array<ArrayBuffer>;
  private readonly slotBytes: number;
  private readonly slotCount: number;
  private readonly layers: GpuLayer[];
  private readonly embedding: GpuWeight;
  private readonly finalNorm: GPUBuffer;
  private readonly embedScale: number;
  /** Gemma 4's per-layer inputs: the packed token table, the projection of the embedding, its norm. */
  private readonly perLayerInput: { embedding: GpuWeight; projection: GpuWeight; norm: GPUBuffer; scale: number } | null;
  /** Unit gains (Gemma 4's value norm) by width. */
  private readonly unitGains = new Map<number, GPUBuffer>();
  private readonly maxBindingBytes: number;
  private readonly promptChunk: number;
  /** The optional features the device was made with (shaders.ts usefulFeatures). */
  private readonly features: ShaderFeatures;
  /** Set when the device is lost (driver reset, tab in background too long): every later call fails with it. */
  private lost: string | null = null;

  constructor(
    readonly device: GPUDevice,
    readonly config: GemmaConfig,
    weights: GemmaWeights,
    options: GpuForwardOptions = {},
  ) {
    const unsupported = gpuUnsupported(config);
    if (unsupported) throw new ConfigError(`${unsupported}; use the wasm backend for this model`);
    const limit = Math.min(device.limits.maxStorageBufferBindingSize, device.limits.maxBufferSize);
    const asked = options.maxBindingBytes;
    if (asked !== undefined && !(Number.isInteger(asked) && asked >= 4))
      throw new ConfigError(`maxBindingBytes must be a whole number of bytes, at least 4, not ${asked}`);
    this.maxBindingBytes = Math.min(limit, asked ?? limit);
    this.promptChunk = options.promptChunk ?? PROMPT_CHUNK;
    this.features = shaderFeatures(device);
    if (!Number.isInteger(this.promptChunk) || this.promptChunk < 1)
      throw new ConfigError(`promptChunk must be a positive whole number of tokens, not ${options.promptChunk}`);
    void device.lost.then((info) => {
      this.lost = info.message || info.reason;
    });
    this.embedScale = embeddingNormalizer(config.dModel, "f32");
    this.embedding = this.upload(weights.embedding);
    this.finalNorm = this.floats(weights.finalNorm);
    this.layers = weights.layers.map((w, i) => {
      const invFreq = layerRopeFrequencies(config.rope[config.layerTypes[i]!], config.layers[i]!.headDim);
      return {
        inputNorm: this.floats(w.inputNorm),
        postAttentionNorm: w.postAttentionNorm ? this.floats(w.postAttentionNorm) : null,
        preFeedforwardNorm: this.floats(w.preFeedforwardNorm),
        postFeedforwardNorm: w.postFeedforwardNorm ? this.floats(w.postFeedforwardNorm) : null,
        qNorm: w.qNorm ? this.floats(w.qNorm) : null,
        kNorm: w.kNorm ? this.floats(w.kNorm) : null,
        q: this.upload(w.q),
        k: config.layers[i]!.kvSource === i ? this.upload(w.k!) : null,
        v: config.layers[i]!.kvSource === i && w.v ? this.upload(w.v) : null,
        o: this.upload(w.o),
        gate: this.upload(w.gate),
        up: this.upload(w.up),
        down: this.upload(w.down),
        invFreq,
        perLayer: w.perLayer
          ? { gate: this.upload(w.perLayer.gate), projection: this.upload(w.perLayer.projection), norm: this.floats(w.perLayer.norm) }
          : null,
        scalar: w.scalar,
        moe: w.moe ? this.uploadExperts(w.moe) : null,
      };
    });
    const pli = weights.perLayerInput;
    this.perLayerInput =
      config.perLayerInput && pli
        ? {
            embedding: this.upload(pli.embedding),
            projection: this.upload(pli.projection),
            norm: this.floats(pli.norm),
            scale: embeddingNormalizer(config.perLayerInput.dim, "f32"),
          }
        : null;
    // At most 19 dispatches per layer (norms, projections, RoPE, attention, GeGLU, adds), 4 outside,
    // and one more per extra part of a split matrix (the embedding's twice: lookup and output head).
    const extraParts = (w: GpuWeight) => w.parts.length - 1;
    const matrices = this.matrices();
    const split = matrices.reduce((n, w) => n + extraParts(w), 0);
    this.slotBytes = Math.max(UNIFORM_BYTES, device.limits.minUniformBufferOffsetAlignment);
    // Gemma 4 adds up to 9 per layer (value norm, per-layer input block, layer scalar) and 6 outside;
    // its experts 12 more per layer.
    this.slotCount = (config.moe ? 42 : 30) * config.nLayers + 16 + split + extraParts(this.embedding);
    this.params = new Uint8Array(this.slotCount * this.slotBytes);
    this.uniformSlots = device.createBuffer({
      size: this.slotCount * this.slotBytes,
      usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
    });
  }

  /** How many device buffers hold the matrices (more than one per matrix where one exceeded the binding limit). */
  weightBuffers(): number {
    return this.matrices().reduce((n, w) => n + w.parts.length, 0);
  }

  /** Every matrix on the device (the embedding once). */
  private matrices(): GpuWeight[] {
    const layers = this.layers.flatMap((l) => [
      l.q,
      ...(l.k ? [l.k] : []),
      ...(l.v ? [l.v] : []),
      l.o,
      l.gate,
      l.up,
      l.down,
      ...(l.perLayer ? [l.perLayer.gate, l.perLayer.projection] : []),
      ...(l.moe ? [l.moe.router, l.moe.gate, l.moe.up, l.moe.down] : []),
    ]);
    const perLayer = this.perLayerInput ? [this.perLayerInput.embedding, this.perLayerInput.projection] : [];
    return [this.embedding, ...perLayer, ...layers];
  }

  private unitGain(width: number): GPUBuffer {
    let gain = this.unitGains.get(width);
    if (!gain) {
      gain = this.floats(new Float32Array(width).fill(1));
      this.unitGains.set(width, gain);
    }
    return gain;
  }

  createState(options: StateOptions = {}): GpuKvCache {
    return new GpuKvCache(this.device, this.config, options);
  }

  forward(): Float32Array {
    throw new GenerationError("the WebGPU forward pass is asynchronous: use forwardAsync");
  }

  /** Runs `ids` after the cached positions; logits after the final soft-cap ([ids.length, vocab] for "all", [vocab] for "last"). */
  async forwardAsync(ids: readonly number[], state: DecodeState | null, logitsFor: "all" | "last"): Promise<Float32Array> {
    if (state !== null && !(state instanceof GpuKvCache))
      throw new GenerationError("the WebGPU forward needs its own KV cache (createState)");
    if (this.lost !== null) throw new GenerationError(`the GPU device was lost (${this.lost}); load the model again`);
    const c = this.config;
    const cache = state;
    const T = ids.length;
    const startPos = cache?.length ?? 0;
    if (T === 0) throw new GenerationError("forward needs at least one token");
    if (startPos + T > c.maxPositions)
      throw new GenerationError(`sequence of ${startPos + T} tokens exceeds the model's context of ${c.maxPositions} positions`);
    for (const id of ids) {
      if (!Number.isInteger(id) || id < 0 || id >= c.vocabSize)
        throw new GenerationError(`token id ${id} is outside the vocabulary of ${c.vocabSize}`);
      if (c.perLayerInput && id >= c.perLayerInput.vocabSize)
        throw new GenerationError(`token id ${id} is outside the per-layer input vocabulary of ${c.perLayerInput.vocabSize}`);
    }
    if (T <= this.promptChunk) return (await this.pass(ids, cache, logitsFor))!;
    // A long prompt in passes (a cache for the call when none was given): each pass's scratch stays bounded.
    const chunked = cache ?? this.createState();
    const rows: Float32Array[] = [];
    try {
      for (let from = 0; from < T; from += this.promptChunk) {
        const chunk = ids.slice(from, from + this.promptChunk);
        const last = from + this.promptChunk >= T;
        const logits = await this.pass(chunk, chunked, logitsFor === "all" ? "all" : last ? "last" : "none");
        if (logits) rows.push(logits);
      }
    } finally {
      if (!cache) chunked.destroy();
    }
    if (rows.length === 1) return rows[0]!;
    const all = new Float32Array(rows.reduce((n, r) => n + r.length, 0));
    let at = 0;
    for (const r of rows) {
      all.set(r, at);
      at += r.length;
    }
    return all;
  }

  /** One pass over `ids` (at most promptChunk tokens) after the cached positions; "none" reads nothing back. */
  private async pass(ids: readonly number[], cache: GpuKvCache | null, logitsFor: "all" | "last" | "none"): Promise<Float32Array | null> {
    const c = this.config;
    const T = ids.length;
    const startPos = cache?.length ?? 0;
    const d = c.dModel;
    const widest = (f: (l: GemmaConfig["layers"][number]) => number) => Math.max(...c.layers.map(f));
    const qMax = c.nHeads * widest((l) => l.headDim);
    const kvMax = widest((l) => l.nKvHeads * l.headDim);
    // The feed-forward buffers also hold Gemma 4's per-layer input gate.
    const ffnMax = Math.max(
      widest((l) => l.ffnDim),
      c.perLayerInput?.dim ?? 0,
    );
    const temp: GPUBuffer[] = [];
    const buffer = (floats: number) => {
      const b = this.device.createBuffer({ size: Math.max(4, floats * 4), usage: storage() });
      temp.push(b);
      return b;
    };
    const h = buffer(T * d);
    const [normed, out, out2] = [buffer(T * d), buffer(T * d), buffer(T * d)];
    const [qRaw, q, attn] = [buffer(T * qMax), buffer(T * qMax), buffer(T * qMax)];
    const [kRaw, vRaw] = [buffer(T * kvMax), buffer(T * kvMax)];
    const [gate, up, act] = [buffer(T * ffnMax), buffer(T * ffnMax), buffer(T * ffnMax)];
    const scores = buffer(T * c.nHeads * (startPos + T));
    const idBuffer = this.device.createBuffer({ size: Math.max(4, T * 4), usage: storage() });
    temp.push(idBuffer);
    this.device.queue.writeBuffer(idBuffer, 0, Uint32Array.from(ids));

    // A shader or binding the device rejects would otherwise leave zeros or stale rows: errors of this call are caught and raised.
    this.device.pushErrorScope("validation");
    let readback: GPUBuffer | null = null;
    let encodingFailure: unknown = null;
    try {
      const encoder = this.device.createCommandEncoder();
      let pass = encoder.beginComputePass();
      const params = this.params;
      let slots = 0;
      const dispatch = (key: string, source: () => string, bindings: GPUBuffer[], values: ArrayBuffer, grid: [number, number, number]) => {
        if (slots === this.slotCount) throw new GenerationError(`the WebGPU forward ran out of its ${this.slotCount} parameter slots`);
        const offset = slots++ * this.slotBytes;
        params.set(new Uint8Array(values), offset);
        const pipeline = this.pipeline(key, source);
        pass.setPipeline(pipeline);
        const entries: GPUBindGroupEntry[] = bindings.map((b, binding) => ({ binding, resource: { buffer: b } }));
        entries.push({ binding: bindings.length, resource: { buffer: this.uniformSlots, offset, size: values.byteLength } });
        pass.setBindGroup(0, this.device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries }));
        pass.dispatchWorkgroups(...grid);
      };
      const matmul = (dst: GPUBuffer, x: GPUBuffer, w: GpuWeight, tokens: number) => {
        for (const part of w.parts) {
          const grid = gridFor(part.rows);
          const values = uniforms([part.rows, w.w.cols, tokens, w.w.rows, part.start]);
          dispatch(`matmul-${w.w.dtype}`, () => matmulShader(w.w.dtype, this.features), [dst, x, part.buffer], values, [
            grid.x,
            grid.y,
            Math.ceil(tokens / MATMUL_TOKEN_TILE),
          ]);
        }
      };
      const rmsnorm = (dst: GPUBuffer, x: GPUBuffer, gain: GPUBuffer, rows: number, dim: number) => {
        const grid = gridFor(rows);
        dispatch("rmsnorm", () => RMSNORM, [dst, x, gain], uniforms([rows, dim], [c.rmsNormEps]), [grid.x, grid.y, 1]);
      };
      const add = (dst: GPUBuffer, x: GPUBuffer, n: number) =>
        dispatch("add", () => ADD, [dst, x], uniforms([n]), [Math.ceil(n / 64), 1, 1]);
      // One cos/sin table per distinct frequency set (layer kind and head_dim), shared by its layers.
      const tables = new Map<Float32Array, GPUBuffer>();
      const rope = (x: GPUBuffer, heads: number, headDim: number, layer: GpuLayer) => {
        let table = tables.get(layer.invFreq);
        if (!table) {
          table = buffer(T * layer.invFreq.length * 2);
          this.device.queue.writeBuffer(table, 0, ropeTable(T, startPos, layer.invFreq));
          tables.set(layer.invFreq, table);
        }
        const half = layer.invFreq.length;
        dispatch("rope", () => ROPE, [x, table], uniforms([T, heads, headDim, half]), [Math.ceil((T * heads * half) / 64), 1, 1]);
      };

      // Rows of a table (split or not) for the call's ids, scaled.
      const embed = (dst: GPUBuffer, table: GpuWeight, scaleBy: number) => {
        const width = table.w.cols;
        for (const part of table.parts)
          dispatch(
            `embed-${table.w.dtype}`,
            () => embedShader(table.w.dtype, this.features),
            [dst, idBuffer, part.buffer],
            uniforms([part.rows, width, T], [scaleBy], [part.start]),
            [Math.ceil((T * width) / 64), 1, 1],
          );
      };
      embed(h, this.embedding, this.embedScale);
      const scale = (x: GPUBuffer, n: number, by: number) =>
        dispatch("scale", () => SCALE, [x], uniforms([n], [by]), [Math.ceil(n / 64), 1, 1]);
      // Gemma 4's per-layer inputs [T, layers · dim]: the token's row of the packed table (scaled by
      // sqrt(dim)) plus the RMS-normed projection of the scaled embedding (× d^-0.5), times 1/sqrt(2).
      let perLayerInputs: GPUBuffer | null = null;
      const pli = this.perLayerInput;
      if (pli) {
        const { dim } = c.perLayerInput!;
        const packed = c.nLayers * dim;
        const fromTokens = buffer(T * packed);
        perLayerInputs = buffer(T * packed);
        const projected = buffer(T * packed);
        embed(fromTokens, pli.embedding, pli.scale);
        matmul(projected, h, pli.projection, T);
        scale(projected, T * packed, Math.fround(d ** -0.5));
        rmsnorm(perLayerInputs, projected, pli.norm, T * c.nLayers, dim);
        add(perLayerInputs, fromTokens, T * packed);
        scale(perLayerInputs, T * packed, Math.fround(2 ** -0.5));
      }
      // Gemma 4's experts: each token's top k run as (token, slot) rows of stacked expert matrices;
      // their scratch is made on the first MoE layer of the call (never for other models).
      const moe = c.moe;
      const expertSlots = T * (moe?.topK ?? 0);
      let scratch: Record<"out" | "routed" | "routerScores" | "weights" | "chosen" | "gate" | "up" | "act" | "y", GPUBuffer> | null = null;
      const expertScratch = () => {
        const { experts: count, expertDim } = moe!;
        scratch ??= {
          out: buffer(T * d),
          routed: buffer(T * d),
          routerScores: buffer(T * count),
          weights: buffer(expertSlots),
          chosen: buffer(expertSlots),
          gate: buffer(expertSlots * expertDim),
          up: buffer(expertSlots * expertDim),
          act: buffer(expertSlots * expertDim),
          y: buffer(expertSlots * d),
        };
        return scratch;
      };
      const expertMatmul = (dst: GPUBuffer, x: GPUBuffer, w: GpuWeight, perExpertRows: number, xPerSlot: boolean) => {
        for (const part of w.parts) {
          const grid = gridFor(perExpertRows);
          const values = uniforms([
            perExpertRows,
            w.w.cols,
            expertSlots,
            part.start / perExpertRows,
            part.rows / perExpertRows,
            xPerSlot ? 1 : 0,
            moe!.topK,
          ]);
          dispatch(
            `expert-matmul-${w.w.dtype}`,
            () => expertMatmulShader(w.w.dtype, this.features),
            [dst, x, part.buffer, expertScratch().chosen],
            values,
            [grid.x, grid.y, expertSlots],
          );
        }
      };
      const experts = (e: GpuExperts): GPUBuffer => {
        const { experts: count, topK, expertDim } = moe!;
        const {
          out: dst,
          routed,
          routerScores,
          weights: expertWeights,
          chosen,
          gate: expertGate,
          up: expertUp,
          act: expertAct,
          y: expertY,
        } = expertScratch();
        rmsnorm(routed, h, this.unitGain(d), T, d);
        dispatch("scale-channels", () => SCALE_CHANNELS, [routed, e.routerScale], uniforms([T * d, d], [d ** -0.5]), [
          Math.ceil((T * d) / 64),
          1,
          1,
        ]);
        matmul(routerScores, routed, e.router, T);
        dispatch("top-k", () => TOP_K, [chosen, expertWeights, routerScores, e.perExpertScale], uniforms([T, count, topK]), [
          Math.ceil(T / 64),
          1,
          1,
        ]);
        rmsnorm(normed, h, e.preNorm, T, d);
        expertMatmul(expertGate, normed, e.gate, expertDim, false);
        expertMatmul(expertUp, normed, e.up, expertDim, false);
        dispatch(
          "geglu",
          () => GEGLU,
          [expertAct, expertGate, expertUp],
          uniforms([expertSlots * expertDim, c.activation === "gelu_exact" ? 1 : 0]),
          [Math.ceil((expertSlots * expertDim) / 64), 1, 1],
        );
        expertMatmul(expertY, expertAct, e.down, d, true);
        dispatch("combine-experts", () => COMBINE_EXPERTS, [dst, expertY, expertWeights], uniforms([T, d, topK]), [
          Math.ceil((T * d) / 64),
          1,
          1,
        ]);
        return dst;
      };
      const perLayerAct = perLayerInputs ? [buffer(T * c.perLayerInput!.dim), buffer(T * c.perLayerInput!.dim)] : [];
      // Each layer's new keys and values in buffers of their own: they go into its ring after the pass
      // (a KV-sharing layer reads its source's, so every reader sees the source's ring before this call).
      const writes: { layer: number; k: GPUBuffer; v: GPUBuffer; width: number }[] = [];
      for (const [i, layer] of this.layers.entries()) {
        const { headDim, nKvHeads, ffnDim, kvSource } = c.layers[i]!;
        const kvWidth = nKvHeads * headDim;
        rmsnorm(normed, h, layer.inputNorm, T, d);
        matmul(layer.qNorm ? qRaw : q, normed, layer.q, T);
        if (layer.qNorm) rmsnorm(q, qRaw, layer.qNorm, T * c.nHeads, headDim);
        rope(q, c.nHeads, headDim, layer);
        let own = writes.find((w) => w.layer === kvSource);
        if (kvSource === i) {
          const [k, v] = [buffer(T * kvWidth), buffer(T * kvWidth)];
          own = { layer: i, k, v, width: kvWidth };
          writes.push(own);
          matmul(layer.kNorm ? kRaw : k, normed, layer.k!, T);
          if (layer.kNorm) rmsnorm(k, kRaw, layer.kNorm, T * nKvHeads, headDim);
          // attention_k_eq_v: the values are the key projection, before its norm and rotation.
          matmul(c.valueNorm ? vRaw : v, normed, layer.v ?? layer.k!, T);
          if (c.valueNorm) rmsnorm(v, vRaw, this.unitGain(headDim), T * nKvHeads, headDim);
          rope(k, nKvHeads, headDim, layer);
        }
        const { k, v } = own!;
        const ring = cache?.layers[kvSource];
        const past = cache?.buffers[kvSource];
        dispatch(
          "attention",
          () => ATTENTION,
          [attn, q, k, v, past?.k ?? k, past?.v ?? v, scores],
          uniforms(
            [
              T,
              c.nHeads,
              nKvHeads,
              headDim,
              startPos,
              ring?.ringSize ?? 1,
              c.layerTypes[i] === "local" ? (c.slidingWindow ?? 0) : 0,
              startPos + T,
            ],
            [c.queryPreAttnScalar ** -0.5, c.attnSoftcap ?? 0],
            [0, 0],
          ),
          [c.nHeads, T, 1],
        );
        matmul(out, attn, layer.o, T);
        if (layer.postAttentionNorm) rmsnorm(out2, out, layer.postAttentionNorm, T, d);
        add(h, layer.postAttentionNorm ? out2 : out, T * d);
        rmsnorm(normed, h, layer.preFeedforwardNorm, T, d);
        matmul(gate, normed, layer.gate, T);
        matmul(up, normed, layer.up, T);
        dispatch("geglu", () => GEGLU, [act, gate, up], uniforms([T * ffnDim, c.activation === "gelu_exact" ? 1 : 0]), [
          Math.ceil((T * ffnDim) / 64),
          1,
          1,
        ]);
        matmul(out, act, layer.down, T);
        let ffnOut = out;
        if (layer.moe) {
          // Gemma 4: the experts read the residual stream beside the dense MLP; both outputs are normed and summed.
          rmsnorm(out2, out, layer.moe.postDenseNorm, T, d);
          rmsnorm(out, experts(layer.moe), layer.moe.postExpertsNorm, T, d);
          add(out2, out, T * d);
          ffnOut = out2;
        }
        const ffnNormed = ffnOut === out ? out2 : out;
        if (layer.postFeedforwardNorm) rmsnorm(ffnNormed, ffnOut, layer.postFeedforwardNorm, T, d);
        add(h, layer.postFeedforwardNorm ? ffnNormed : ffnOut, T * d);
        if (layer.perLayer && perLayerInputs) {
          // h += norm(projection(gelu(gate·h) ⊙ this layer's slice of the per-layer inputs)).
          const dim = c.perLayerInput!.dim;
          const [slice, gated] = perLayerAct as [GPUBuffer, GPUBuffer];
          dispatch("slice", () => SLICE, [slice, perLayerInputs], uniforms([T, dim, c.nLayers * dim, i * dim]), [
            Math.ceil((T * dim) / 64),
            1,
            1,
          ]);
          matmul(gate, h, layer.perLayer.gate, T);
          dispatch("geglu", () => GEGLU, [gated, gate, slice], uniforms([T * dim, c.activation === "gelu_exact" ? 1 : 0]), [
            Math.ceil((T * dim) / 64),
            1,
            1,
          ]);
          matmul(out, gated, layer.perLayer.projection, T);
          rmsnorm(out2, out, layer.perLayer.norm, T, d);
          add(h, out2, T * d);
        }
        if (layer.scalar !== 1) scale(h, T * d, layer.scalar);
      }
      pass.end();
      let logits: GPUBuffer | null = null;
      const rows = logitsFor === "all" ? T : 1;
      if (logitsFor !== "none") {
        const last = buffer(rows * d);
        logits = buffer(rows * c.vocabSize);
        encoder.copyBufferToBuffer(h, logitsFor === "all" ? 0 : (T - 1) * d * 4, last, 0, rows * d * 4);
        pass = encoder.beginComputePass();
        rmsnorm(normed, last, this.finalNorm, rows, d);
        matmul(logits, normed, this.embedding, rows);
        if (c.finalSoftcap !== null)
          dispatch("softcap", () => SOFTCAP, [logits], uniforms([rows * c.vocabSize], [c.finalSoftcap]), [
            Math.ceil((rows * c.vocabSize) / 64),
            1,
            1,
          ]);
        pass.end();
      }
      // The new keys and values into each layer's ring: row (startPos + s) mod ring.
      if (cache) {
        for (const { layer, k: keys, v: values, width } of writes) {
          const ring = cache.layers[layer]!.ringSize;
          const { k: ringK, v: ringV } = cache.buffers[layer]!;
          for (let s = Math.max(0, T - ring); s < T; s++) {
            const row = ((startPos + s) % ring) * width * 4;
            encoder.copyBufferToBuffer(keys, s * width * 4, ringK, row, width * 4);
            encoder.copyBufferToBuffer(values, s * width * 4, ringV, row, width * 4);
          }
        }
      }
      readback = logits
        ? this.device.createBuffer({ size: rows * c.vocabSize * 4, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST })
        : null;
      if (readback) {
        temp.push(readback);
        encoder.copyBufferToBuffer(logits!, 0, readback, 0, rows * c.vocabSize * 4);
      }
      this.device.queue.writeBuffer(this.uniformSlots, 0, params, 0, slots * this.slotBytes);
      this.device.queue.submit([encoder.finish()]);
    } catch (e) {
      encodingFailure = e;
    }
    const invalid = await this.device.popErrorScope();
    if (invalid || encodingFailure) for (const b of temp) b.destroy();
    if (invalid) throw new GenerationError(`the GPU rejected the forward pass: ${invalid.message}`);
    if (encodingFailure) throw encodingFailure;
    try {
      if (readback) await readback.mapAsync(GPUMapMode.READ);
      else await this.device.queue.onSubmittedWorkDone();
    } catch (e) {
      throw new GenerationError(`the GPU could not finish the forward pass (${this.lost ?? (e as Error).message}); load the model again`);
    }
    if (this.lost !== null) throw new GenerationError(`the GPU device was lost (${this.lost}); load the model again`);
    const result = readback ? new Float32Array(readback.getMappedRange().slice(0)) : null;
    readback?.unmap();
    for (const b of temp) b.destroy();
    if (cache) cache.length = startPos + T;
    if (!result) return null;
    for (let i = 0; i < result.length; i++) {
      if (result[i]! - result[i]! !== 0)
        throw new GenerationError(`the model computed a non-finite logit (${result[i]}) on the GPU for token ${i % c.vocabSize}`);
    }
    return result;
  }

  private pipeline(key: string, source: () => string): GPUComputePipeline {
    let pipeline = this.pipelines.get(key);
    if (!pipeline) {
      pipeline = this.device.createComputePipeline({
        layout: "auto",
        compute: { module: this.device.createShaderModule({ code: source() }), entryPoint: "main" },
      });
      this.pipelines.set(key, pipeline);
    }
    return pipeline;
  }

  /** A matrix in its stored layout, in as few buffers of whole rows as the binding limit allows. */
  private upload(w: Weight, rowsTogether = 1): GpuWeight {
    const bytes = new Uint8Array(w.data.buffer, w.data.byteOffset, w.data.byteLength);
    const rowBytes = bytes.length / w.rows;
    const perPart = Math.floor((Math.floor(this.maxBindingBytes / 4) * 4) / rowBytes / rowsTogether) * rowsTogether;
    if (perPart < 1) {
      const what = rowsTogether > 1 ? `one expert's ${rowsTogether} rows` : "one row";
      const size = `${what} of a ${w.rows} × ${w.cols} ${w.dtype} matrix (${rowBytes * rowsTogether} bytes)`;
      throw new ConfigError(`${size} exceeds the binding limit of ${this.maxBindingBytes}`);
    }
    const parts: GpuWeight["parts"] = [];
    for (let start = 0; start < w.rows; start += perPart) {
      const rows = Math.min(perPart, w.rows - start);
      const size = Math.max(4, Math.ceil((rows * rowBytes) / 4) * 4);
      const buffer = this.device.createBuffer({ size, usage: storage() });
      const padded = new Uint8Array(size);
      padded.set(bytes.subarray(start * rowBytes, (start + rows) * rowBytes));
      this.device.queue.writeBuffer(buffer, 0, padded);
      parts.push({ buffer, start, rows });
    }
    return { parts, w: { dtype: w.dtype, rows: w.rows, cols: w.cols } };
  }

  /** A layer's experts, each matrix kind stacked into one [experts · rows, cols] matrix, split only between experts. */
  private uploadExperts(w: MoeWeights): GpuExperts {
    const stacked = (pick: (e: MoeWeights["experts"][number]) => Weight): GpuWeight => {
      const all = w.experts.map(pick);
      const first = all[0]!;
      if (all.some((m) => m.dtype !== first.dtype || m.rows !== first.rows || m.cols !== first.cols))
        throw new ConfigError("the experts of a layer differ in type or shape; WebGPU needs them alike");
      const data = new Uint8Array(all.reduce((n, m) => n + m.data.byteLength, 0));
      let at = 0;
      for (const m of all) {
        data.set(new Uint8Array(m.data.buffer, m.data.byteOffset, m.data.byteLength), at);
        at += m.data.byteLength;
      }
      return this.upload({ dtype: first.dtype, rows: first.rows * all.length, cols: first.cols, data } as Weight, first.rows);
    };
    return {
      router: this.upload(w.router),
      routerScale: this.floats(w.routerScale),
      perExpertScale: this.floats(w.perExpertScale),
      gate: stacked((e) => e.gate),
      up: stacked((e) => e.up),
      down: stacked((e) => e.down),
      preNorm: this.floats(w.preNorm),
      postDenseNorm: this.floats(w.postDenseNorm),
      postExpertsNorm: this.floats(w.postExpertsNorm),
    };
  }

  private floats(data: Float32Array): GPUBuffer {
    const buffer = this.device.createBuffer({ size: Math.max(4, data.byteLength), usage: storage() });
    this.device.queue.writeBuffer(buffer, 0, new Float32Array(data));
    return buffer;
  }
}
