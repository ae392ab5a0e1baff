/**
 * Reading the config.json of Gemma 3 (`gemma3_text`) and Gemma 4 (`gemma4_text`) into the one
 * GemmaConfig the Gemma code runs (docs/spec/GEMMA3-4.md §1). Absent fields take the defaults
 * transformers' Gemma3TextConfig / Gemma4TextConfig give them, because the published multimodal
 * checkpoints spell only what differs from those.
 */
import { ConfigError } from "../../errors.js";
import { FieldReader, type Json } from "../config-fields.js";
import {
  checkSharedFields,
  readActivation,
  readLayerTypes,
  uniformLayers,
  type AttentionKind,
  type GemmaConfig,
  type LayerShape,
  type MoeConfig,
  type PerLayerInputConfig,
  type RopeSetting,
} from "./config-common.js";

type Unsupported = GemmaConfig["unsupportedInputs"];

/** Every `pattern`-th layer is global, the rest local (transformers' default when `layer_types` is absent). */
function patternLayerTypes(nLayers: number, pattern: number): AttentionKind[] {
  return Array.from({ length: nLayers }, (_, i) => ((i + 1) % pattern === 0 ? "global" : "local"));
}

/** Fields both generations read the same way; `defaults` are their config classes' defaults. */
function readCommon(hf: Json, source: string, defaults: { vocab: number; layers: number; maxPositions: number; window: number }) {
  const read = new FieldReader(hf, source);
  if (hf["attention_bias"] === true)
    throw new ConfigError(`${source}: attention_bias true is not supported (Gemma has no attention biases)`, "attention_bias");
  const nLayers = read.positiveIntOr("num_hidden_layers", defaults.layers);
  const nHeads = read.positiveIntOr("num_attention_heads", 8);
  const nKvHeads = read.positiveIntOr("num_key_value_heads", 4);
  const headDim = read.positiveIntOr("head_dim", 256);
  checkHeads(nHeads, nKvHeads, headDim, source, "num_key_value_heads");
  const pattern = read.positiveIntOr("sliding_window_pattern", read.positiveIntOr("_sliding_window_pattern", 6));
  return {
    read,
    vocabSize: read.positiveIntOr("vocab_size", defaults.vocab),
    dModel: read.positiveIntOr("hidden_size", 2304),
    nLayers,
    nHeads,
    nKvHeads,
    headDim,
    ffnDim: read.positiveIntOr("intermediate_size", 9216),
    layerTypes: readLayerTypes(hf, nLayers, source, patternLayerTypes(nLayers, pattern)),
    slidingWindow: read.positiveIntOr("sliding_window", defaults.window),
    activation: readActivation(hf, source),
    maxPositions: read.positiveIntOr("max_position_embeddings", defaults.maxPositions),
    rmsNormEps: read.positiveNumberOr("rms_norm_eps", 1e-6),
    bosTokenId: read.tokenIdOr("bos_token_id", 2),
    eosTokenIds: read.tokenIds("eos_token_id", [1]),
    padTokenId: read.tokenIdOr("pad_token_id", 0),
  };
}

function checkHeads(nHeads: number, nKvHeads: number, headDim: number, source: string, field: string): void {
  if (nHeads % nKvHeads !== 0)
    throw new ConfigError(`${source}: num_attention_heads (${nHeads}) must be a multiple of ${field} (${nKvHeads})`, field);
  if (headDim % 2 !== 0) throw new ConfigError(`${source}: head_dim must be even for rotary embeddings, found ${headDim}`, "head_dim");
}

/** Gemma 3 text: QK-norm, no soft-caps by default, two RoPE settings, 5:1 local:global. */
export function gemma3ConfigFromHf(hf: Json, source: string, unsupportedInputs: Unsupported): GemmaConfig {
  const common = readCommon(hf, source, { vocab: 262208, layers: 26, maxPositions: 131072, window: 4096 });
  const { read, ...fields } = common;
  if (hf["use_bidirectional_attention"] === true)
    throw new ConfigError(
      `${source}: use_bidirectional_attention true (an embedding model) is not supported`,
      "use_bidirectional_attention",
    );
  const config: GemmaConfig = {
    family: "gemma3",
    ...fields,
    layers: uniformLayers(fields.nLayers, fields.headDim, fields.nKvHeads, fields.ffnDim),
    queryPreAttnScalar: read.positiveNumberOr("query_pre_attn_scalar", 256),
    attnSoftcap: read.softcap("attn_logit_softcapping", null),
    finalSoftcap: read.softcap("final_logit_softcapping", null),
    sandwichNorms: true,
    rope: readRope(hf, source, ["default", "linear"], {
      global: { type: "default", theta: 1e6, factor: 1, partialRotary: 1 },
      local: { type: "default", theta: 1e4, factor: 1, partialRotary: 1 },
    }),
    qkNorm: true,
    valueNorm: false,
    normGainOffset: 1,
    perLayerInput: null,
    moe: null,
    layerScalars: false,
    unsupportedInputs,
  };
  checkSharedFields(hf, config, source);
  return config;
}

/**
 * Gemma 4 text: Gemma 3's layer plus value norm, per-layer attention shapes (`per_layer_config`),
 * keys as values, KV sharing, per-layer inputs, mixture of experts, layer scalars; attention
 * scale 1 (the QK-norms set the scale).
 */
export function gemma4ConfigFromHf(hf: Json, source: string, unsupportedInputs: Unsupported): GemmaConfig {
  const common = readCommon(hf, source, { vocab: 262144, layers: 30, maxPositions: 131072, window: 512 });
  const { read, ...fields } = common;
  const bidirectional = hf["use_bidirectional_attention"];
  if (bidirectional === "all" || bidirectional === true)
    throw new ConfigError(
      `${source}: use_bidirectional_attention "all" is not supported (gemma-ts runs causal decoders)`,
      "use_bidirectional_attention",
    );
  // As transformers does: the last layer is always global.
  const layerTypes = [...fields.layerTypes];
  layerTypes[layerTypes.length - 1] = "global";
  const config: GemmaConfig = {
    family: "gemma4",
    ...fields,
    layerTypes,
    layers: gemma4Layers(hf, read, source, layerTypes, fields),
    queryPreAttnScalar: 1,
    attnSoftcap: null,
    finalSoftcap: read.softcap("final_logit_softcapping", null),
    sandwichNorms: true,
    rope: readRope(hf, source, ["default", "linear", "proportional"], {
      global: { type: "proportional", theta: 1e6, factor: 1, partialRotary: 0.25 },
      local: { type: "default", theta: 1e4, factor: 1, partialRotary: 1 },
    }),
    qkNorm: true,
    valueNorm: true,
    normGainOffset: 0,
    perLayerInput: readPerLayerInput(hf, read),
    moe: readMoe(hf, read, source),
    layerScalars: true,
    unsupportedInputs,
  };
  checkSharedFields(hf, config, source);
  return config;
}

interface BaseShape {
  nLayers: number;
  nHeads: number;
  nKvHeads: number;
  headDim: number;
  ffnDim: number;
}

/** Per-layer attention shape, keys-as-values, KV sources and MLP width of a Gemma 4 config. */
function gemma4Layers(hf: Json, read: FieldReader, source: string, layerTypes: AttentionKind[], base: BaseShape): LayerShape[] {
  const overrides = readPerLayerConfig(hf, read, source, layerTypes, base.nLayers);
  const keysAreValues = readFlag(hf, "attention_k_eq_v", source);
  const shared = read.optionalNonNegativeInt("num_kv_shared_layers") ?? 0;
  if (shared >= base.nLayers)
    throw new ConfigError(
      `${source}: num_kv_shared_layers (${shared}) must be smaller than num_hidden_layers (${base.nLayers})`,
      "num_kv_shared_layers",
    );
  const firstShared = base.nLayers - shared;
  const doubleWide = readFlag(hf, "use_double_wide_mlp", source);
  const layers = layerTypes.map((kind, i): LayerShape => {
    const o = overrides.get(i) ?? {};
    const headDim = o.headDim ?? base.headDim;
    const nKvHeads = o.nKvHeads ?? base.nKvHeads;
    checkHeads(base.nHeads, nKvHeads, headDim, source, `per_layer_config.${i}.num_key_value_heads`);
    const isShared = i >= firstShared && firstShared > 0;
    return {
      headDim,
      nKvHeads,
      valuesFromKeys: keysAreValues && kind === "global",
      kvSource: isShared ? lastOfKind(layerTypes, kind, firstShared, source) : i,
      ffnDim: base.ffnDim * (doubleWide && isShared ? 2 : 1),
    };
  });
  for (const [i, layer] of layers.entries()) {
    const from = layers[layer.kvSource]!;
    if (from.headDim !== layer.headDim || from.nKvHeads !== layer.nKvHeads)
      throw new ConfigError(
        `${source}: layer ${i} shares the keys and values of layer ${layer.kvSource} (num_kv_shared_layers) but per_layer_config gives ` +
          `them different shapes (head_dim ${layer.headDim} vs ${from.headDim}, num_key_value_heads ${layer.nKvHeads} vs ${from.nKvHeads})`,
        "per_layer_config",
      );
  }
  return layers;
}

/** A KV-shared layer reads the last non-shared layer of its own kind (transformers' store_full_length_kv). */
function lastOfKind(layerTypes: AttentionKind[], kind: AttentionKind, firstShared: number, source: string): number {
  const index = layerTypes.slice(0, firstShared).lastIndexOf(kind);
  if (index < 0)
    throw new ConfigError(
      `${source}: num_kv_shared_layers leaves no earlier ${kind} layer to share keys and values with`,
      "num_kv_shared_layers",
    );
  return index;
}

interface LayerOverride {
  headDim?: number;
  nKvHeads?: number;
}

/**
 * `per_layer_config` ({"5": {"head_dim": 512, "num_key_value_heads": 1}}), or, in configs written
 * before it existed, `global_head_dim` (default 512) and `num_global_key_value_heads` (with
 * attention_k_eq_v) on every global layer, as transformers derives it.
 */
function readPerLayerConfig(hf: Json, read: FieldReader, source: string, layerTypes: AttentionKind[], nLayers: number) {
  const overrides = new Map<number, LayerOverride>();
  const raw = hf["per_layer_config"];
  if (raw === undefined || raw === null) {
    const headDim = read.positiveIntOr("global_head_dim", 512);
    const kvHeads = hf["attention_k_eq_v"] === true ? read.optionalPositiveInt("num_global_key_value_heads") : undefined;
    layerTypes.forEach((kind, i) => {
      if (kind === "global") overrides.set(i, kvHeads === undefined ? { headDim } : { headDim, nKvHeads: kvHeads });
    });
    return overrides;
  }
  if (typeof raw !== "object" || Array.isArray(raw))
    throw new ConfigError(`${source}: per_layer_config must be an object`, "per_layer_config");
  for (const [key, value] of Object.entries(raw as Json)) {
    const index = /^\d+$/.test(key) ? Number(key) : NaN;
    if (!(index < nLayers))
      throw new ConfigError(
        `${source}: per_layer_config key ${JSON.stringify(key)} is not a layer index below ${nLayers}`,
        "per_layer_config",
      );
    if (typeof value !== "object" || value === null || Array.isArray(value))
      throw new ConfigError(`${source}: per_layer_config.${key} must be an object`, "per_layer_config");
    const fields = new FieldReader(value as Json, `${source} per_layer_config.${key}`);
    const unknown = Object.keys(value).filter((f) => f !== "head_dim" && f !== "num_key_value_heads");
    if (unknown.length > 0)
      throw new ConfigError(
        `${source}: per_layer_config.${key} sets ${unknown.join(", ")}; gemma-ts knows head_dim and num_key_value_heads`,
        "per_layer_config",
      );
    const override: LayerOverride = {};
    const headDim = fields.optionalPositiveInt("head_dim");
    const nKvHeads = fields.optionalPositiveInt("num_key_value_heads");
    if (headDim !== undefined) override.headDim = headDim;
    if (nKvHeads !== undefined) override.nKvHeads = nKvHeads;
    if (overrides.has(index)) throw new ConfigError(`${source}: per_layer_config names layer ${index} twice`, "per_layer_config");
    overrides.set(index, override);
  }
  return overrides;
}

function readFlag(hf: Json, field: string, source: string): boolean {
  const v = hf[field];
  if (v === undefined || v === null) return false;
  if (typeof v !== "boolean") throw new ConfigError(`${source}: ${field} must be true or false, found ${JSON.stringify(v)}`, field);
  return v;
}

function readPerLayerInput(hf: Json, read: FieldReader): PerLayerInputConfig | null {
  const raw = hf["hidden_size_per_layer_input"];
  if (raw === 0 || raw === null) return null;
  return {
    dim: read.positiveIntOr("hidden_size_per_layer_input", 256),
    vocabSize: read.positiveIntOr("vocab_size_per_layer_input", 262144),
  };
}

function readMoe(hf: Json, read: FieldReader, source: string): MoeConfig | null {
  if (!readFlag(hf, "enable_moe_block", source)) return null;
  const moe = {
    experts: read.positiveInt("num_experts"),
    topK: read.positiveInt("top_k_experts"),
    expertDim: read.positiveInt("moe_intermediate_size"),
  };
  if (moe.topK > moe.experts)
    throw new ConfigError(`${source}: top_k_experts (${moe.topK}) exceeds num_experts (${moe.experts})`, "top_k_experts");
  return moe;
}

/**
 * RoPE per layer kind from `rope_parameters` ({"sliding_attention": {...}, "full_attention": {...}})
 * or the older spelling: `rope_theta` + `rope_scaling` for global layers, `rope_local_base_freq`
 * for local ones.
 */
function readRope(
  hf: Json,
  source: string,
  allowed: RopeSetting["type"][],
  defaults: Record<AttentionKind, RopeSetting>,
): Record<AttentionKind, RopeSetting> {
  const params = hf["rope_parameters"];
  if (params !== undefined && params !== null) {
    if (typeof params !== "object" || Array.isArray(params))
      throw new ConfigError(`${source}: rope_parameters must be an object`, "rope_parameters");
    const p = params as Json;
    if ("sliding_attention" in p || "full_attention" in p) {
      return {
        local: ropeSetting(p["sliding_attention"], "rope_parameters.sliding_attention", defaults.local, source, allowed),
        global: ropeSetting(p["full_attention"], "rope_parameters.full_attention", defaults.global, source, allowed),
      };
    }
    // One setting for the whole model: it is the global layers'; local layers keep their base.
    return {
      local: ropeLocalLegacy(hf, defaults.local, source),
      global: ropeSetting(p, "rope_parameters", defaults.global, source, allowed),
    };
  }
  const read = new FieldReader(hf, source);
  const scaling = hf["rope_scaling"];
  const globalTheta = read.positiveNumberOr("rope_theta", defaults.global.theta);
  const global =
    scaling === undefined || scaling === null
      ? { ...defaults.global, theta: globalTheta }
      : ropeSetting({ rope_theta: globalTheta, ...(scaling as Json) }, "rope_scaling", defaults.global, source, allowed);
  return { local: ropeLocalLegacy(hf, defaults.local, source), global };
}

function ropeLocalLegacy(hf: Json, fallback: RopeSetting, source: string): RopeSetting {
  return { ...fallback, theta: new FieldReader(hf, source).positiveNumberOr("rope_local_base_freq", fallback.theta) };
}

function ropeSetting(raw: unknown, field: string, fallback: RopeSetting, source: string, allowed: RopeSetting["type"][]): RopeSetting {
  if (raw === undefined || raw === null) return { ...fallback };
  if (typeof raw !== "object" || Array.isArray(raw)) throw new ConfigError(`${source}: ${field} must be an object`, field);
  const p = raw as Json;
  const type = p["rope_type"] ?? p["type"] ?? "default";
  if (typeof type !== "string" || !(allowed as string[]).includes(type))
    throw new ConfigError(
      `${source}: ${field}.rope_type ${JSON.stringify(type)} is not supported (this family uses ` +
        `${allowed.map((t) => `"${t}"`).join(", ")})`,
      `${field}.rope_type`,
    );
  const read = new FieldReader(p, `${source} ${field}`);
  const setting: RopeSetting = {
    type: type as RopeSetting["type"],
    theta: read.positiveNumberOr("rope_theta", fallback.theta),
    factor: read.positiveNumberOr("factor", 1),
    partialRotary: read.positiveNumberOr("partial_rotary_factor", 1),
  };
  if (setting.type === "linear" && p["factor"] === undefined)
    throw new ConfigError(`${source}: ${field} of rope_type "linear" needs a factor`, `${field}.factor`);
  if (setting.partialRotary > 1)
    throw new ConfigError(
      `${source}: ${field}.partial_rotary_factor must be at most 1, found ${setting.partialRotary}`,
      `${field}.partial_rotary_factor`,
    );
  if (setting.partialRotary !== 1 && setting.type !== "proportional")
    throw new ConfigError(
      `${source}: ${field}.partial_rotary_factor is only supported with rope_type "proportional"`,
      `${field}.partial_rotary_factor`,
    );
  return setting;
}
