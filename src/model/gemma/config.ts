/**
 * Model configuration: named presets (GEMMA2.md §1, §4) and a strict reader of Hugging Face
 * `config.json` for `model_type` "gemma2" and "gemma". Model code branches on these fields only,
 * never on a model's name.
 */
import type { Activation } from "../../backend/kernels.js";
import { ConfigError } from "../../errors.js";
import { FieldReader, parseJsonObject, type Json } from "../config-fields.js";

export type ModelFamily = "gemma" | "gemma2";
export type AttentionKind = "local" | "global";

export interface GemmaConfig {
  family: ModelFamily;
  vocabSize: number;
  dModel: number;
  nLayers: number;
  nHeads: number;
  nKvHeads: number;
  headDim: number;
  ffnDim: number;
  /** Attention kind of each layer; local layers see `0 <= i - j < slidingWindow` (§2.2.6). */
  layerTypes: AttentionKind[];
  /** null when no layer is local (Gemma 1). */
  slidingWindow: number | null;
  /** Scores are multiplied by queryPreAttnScalar^-0.5 (§2.2.4; 144 for the 27B, not head_dim). */
  queryPreAttnScalar: number;
  attnSoftcap: number | null;
  finalSoftcap: number | null;
  /** Gemma 2 norms the attention and MLP outputs too (four norms per layer); Gemma 1 does not. */
  sandwichNorms: boolean;
  activation: Activation;
  ropeTheta: number;
  maxPositions: number;
  rmsNormEps: number;
  bosTokenId: number;
  eosTokenIds: number[];
  padTokenId: number;
}

/** Fields every Gemma 1 and 2 release shares (a fresh object each time: presets must not share arrays). */
function sharedPresetFields() {
  return {
    vocabSize: 256000,
    activation: "gelu_tanh" as const,
    ropeTheta: 10000,
    maxPositions: 8192,
    rmsNormEps: 1e-6,
    bosTokenId: 2,
    eosTokenIds: [1],
    padTokenId: 0,
  };
}

function gemma2Preset(p: {
  nLayers: number;
  dModel: number;
  nHeads: number;
  nKvHeads: number;
  headDim: number;
  ffnDim: number;
  queryPreAttnScalar: number;
}): GemmaConfig {
  return {
    family: "gemma2",
    ...p,
    layerTypes: defaultLayerTypes(p.nLayers),
    slidingWindow: 4096,
    attnSoftcap: 50,
    finalSoftcap: 30,
    sandwichNorms: true,
    ...sharedPresetFields(),
  };
}

function gemma1Preset(p: { nLayers: number; dModel: number; nHeads: number; nKvHeads: number; ffnDim: number }): GemmaConfig {
  return {
    family: "gemma",
    ...p,
    headDim: 256,
    layerTypes: new Array<AttentionKind>(p.nLayers).fill("global"),
    slidingWindow: null,
    queryPreAttnScalar: 256,
    attnSoftcap: null,
    finalSoftcap: null,
    sandwichNorms: false,
    ...sharedPresetFields(),
  };
}

/** The published configurations (GEMMA2.md §1 and §4). */
export const PRESETS = {
  "gemma2-2b": gemma2Preset({ nLayers: 26, dModel: 2304, nHeads: 8, nKvHeads: 4, headDim: 256, ffnDim: 9216, queryPreAttnScalar: 256 }),
  "gemma2-9b": gemma2Preset({ nLayers: 42, dModel: 3584, nHeads: 16, nKvHeads: 8, headDim: 256, ffnDim: 14336, queryPreAttnScalar: 256 }),
  "gemma2-27b": gemma2Preset({ nLayers: 46, dModel: 4608, nHeads: 32, nKvHeads: 16, headDim: 128, ffnDim: 36864, queryPreAttnScalar: 144 }),
  "gemma-2b": gemma1Preset({ nLayers: 18, dModel: 2048, nHeads: 8, nKvHeads: 1, ffnDim: 16384 }),
  "gemma-7b": gemma1Preset({ nLayers: 28, dModel: 3072, nHeads: 16, nKvHeads: 16, ffnDim: 24576 }),
} satisfies Record<string, GemmaConfig>;

export type PresetName = keyof typeof PRESETS;

/** Layer i is local when i is even, global when odd; layer 0 is local (§2.2). */
export function defaultLayerTypes(nLayers: number): AttentionKind[] {
  return Array.from({ length: nLayers }, (_, i) => (i % 2 === 0 ? "local" : "global"));
}

/** Parses the text of a Gemma 1/2 config.json; `source` names the file in errors. */
export function parseConfigJson(text: string, source = "config.json"): GemmaConfig {
  return configFromHf(parseJsonObject(text, source), source);
}

/** Builds a GemmaConfig from the fields of a Hugging Face config.json object. */
export function configFromHf(hf: Json, source = "config.json"): GemmaConfig {
  const read = new FieldReader(hf, source);
  const modelType = hf["model_type"];
  if (modelType !== "gemma2" && modelType !== "gemma") {
    const found = modelType === undefined ? "no model_type" : `model_type ${JSON.stringify(modelType)}`;
    throw new ConfigError(`${source}: unsupported model: ${found} (gemma-ts reads "gemma2", "gemma" and "recurrent_gemma")`, "model_type");
  }
  const family: ModelFamily = modelType;
  const isGemma2 = family === "gemma2";

  const dModel = read.positiveInt("hidden_size");
  const nLayers = read.positiveInt("num_hidden_layers");
  const nHeads = read.positiveInt("num_attention_heads");
  const nKvHeads = read.positiveInt("num_key_value_heads");
  const headDim = read.positiveInt("head_dim");
  if (nHeads % nKvHeads !== 0) {
    throw new ConfigError(
      `${source}: num_attention_heads (${nHeads}) must be a multiple of num_key_value_heads (${nKvHeads})`,
      "num_key_value_heads",
    );
  }
  if (headDim % 2 !== 0) {
    throw new ConfigError(`${source}: head_dim must be even for rotary embeddings, found ${headDim}`, "head_dim");
  }

  const slidingWindow = isGemma2 ? (read.optionalPositiveInt("sliding_window") ?? read.positiveInt("sliding_window_size")) : null;
  const layerTypes = isGemma2 ? readLayerTypes(hf, nLayers, source) : new Array<AttentionKind>(nLayers).fill("global");

  const config: GemmaConfig = {
    family,
    vocabSize: read.positiveInt("vocab_size"),
    dModel,
    nLayers,
    nHeads,
    nKvHeads,
    headDim,
    ffnDim: read.positiveInt("intermediate_size"),
    layerTypes,
    slidingWindow,
    // Gemma 1 scales by 1/sqrt(head_dim) (§4); Gemma 2 names its scalar (§1: 144 for the 27B).
    queryPreAttnScalar: isGemma2 ? read.positiveNumber("query_pre_attn_scalar") : headDim,
    attnSoftcap: isGemma2 ? read.softcap("attn_logit_softcapping", 50) : null,
    finalSoftcap: isGemma2 ? read.softcap("final_logit_softcapping", 30) : null,
    sandwichNorms: isGemma2,
    activation: readActivation(hf, source),
    ropeTheta: readRopeTheta(read, hf, source),
    maxPositions: read.optionalPositiveInt("max_position_embeddings") ?? 8192,
    rmsNormEps: read.optionalPositiveNumber("rms_norm_eps") ?? 1e-6,
    bosTokenId: read.optionalTokenId("bos_token_id") ?? 2,
    eosTokenIds: read.tokenIds("eos_token_id", [1]),
    padTokenId: read.optionalTokenId("pad_token_id") ?? 0,
  };
  if (hf["tie_word_embeddings"] === false) {
    throw new ConfigError(
      `${source}: tie_word_embeddings false is not a Gemma checkpoint (Gemma ties input and output embeddings)`,
      "tie_word_embeddings",
    );
  }
  for (const [field, id] of [
    ["bos_token_id", config.bosTokenId],
    ["pad_token_id", config.padTokenId],
    ...config.eosTokenIds.map((id) => ["eos_token_id", id] as const),
  ] as const) {
    if (id >= config.vocabSize) {
      throw new ConfigError(`${source}: ${field} ${id} is outside the vocabulary of ${config.vocabSize}`, field);
    }
  }
  return config;
}

function readLayerTypes(hf: Json, nLayers: number, source: string): AttentionKind[] {
  const raw = hf["layer_types"];
  if (raw === undefined || raw === null) return defaultLayerTypes(nLayers);
  if (!Array.isArray(raw) || raw.length !== nLayers) {
    throw new ConfigError(`${source}: layer_types must be a list of num_hidden_layers (${nLayers}) entries`, "layer_types");
  }
  return raw.map((t, i) => {
    if (t === "sliding_attention") return "local";
    if (t === "full_attention") return "global";
    throw new ConfigError(
      `${source}: layer_types[${i}] is ${JSON.stringify(t)}; expected "sliding_attention" or "full_attention"`,
      "layer_types",
    );
  });
}

/** `hidden_activation` wins; a bare legacy `hidden_act: "gelu"` means the tanh form, as in HF (transformers#29402). */
function readActivation(hf: Json, source: string): Activation {
  const explicit = hf["hidden_activation"];
  const legacy = hf["hidden_act"];
  const name = explicit ?? legacy ?? "gelu_pytorch_tanh";
  if (name === "gelu_pytorch_tanh" || name === "gelu_new" || name === "gelu_fast") return "gelu_tanh";
  if (name === "gelu") return explicit === undefined || explicit === null ? "gelu_tanh" : "gelu_exact";
  const field = explicit !== undefined && explicit !== null ? "hidden_activation" : "hidden_act";
  throw new ConfigError(`${source}: ${field} ${JSON.stringify(name)} is not supported (expected "gelu_pytorch_tanh" or "gelu")`, field);
}

/** `rope_theta` (≤ 4.5x) or `rope_parameters.rope_theta` (v5); only the default rope type exists for Gemma. */
function readRopeTheta(read: FieldReader, hf: Json, source: string): number {
  const params = hf["rope_parameters"];
  if (params !== undefined && params !== null) {
    if (typeof params !== "object" || Array.isArray(params)) {
      throw new ConfigError(`${source}: rope_parameters must be an object`, "rope_parameters");
    }
    const p = params as Json;
    if (p["rope_type"] !== undefined && p["rope_type"] !== "default") {
      throw new ConfigError(
        `${source}: rope_parameters.rope_type ${JSON.stringify(p["rope_type"])} is not supported (only "default")`,
        "rope_parameters.rope_type",
      );
    }
    const theta = p["rope_theta"];
    if (typeof theta !== "number" || !(theta > 0)) {
      throw new ConfigError(`${source}: rope_parameters.rope_theta must be a positive number`, "rope_parameters.rope_theta");
    }
    return theta;
  }
  const scaling = hf["rope_scaling"];
  if (scaling !== undefined && scaling !== null) {
    throw new ConfigError(`${source}: rope_scaling is not supported for Gemma`, "rope_scaling");
  }
  return read.optionalPositiveNumber("rope_theta") ?? 10000;
}

/** A Hugging Face config.json object for a Gemma 1/2 config (what a trained checkpoint saves). */
export function configToHf(c: GemmaConfig): Record<string, unknown> {
  const isGemma2 = c.family === "gemma2";
  return {
    architectures: [isGemma2 ? "Gemma2ForCausalLM" : "GemmaForCausalLM"],
    model_type: c.family,
    vocab_size: c.vocabSize,
    hidden_size: c.dModel,
    num_hidden_layers: c.nLayers,
    num_attention_heads: c.nHeads,
    num_key_value_heads: c.nKvHeads,
    head_dim: c.headDim,
    intermediate_size: c.ffnDim,
    hidden_activation: c.activation === "gelu_tanh" ? "gelu_pytorch_tanh" : "gelu",
    max_position_embeddings: c.maxPositions,
    rms_norm_eps: c.rmsNormEps,
    rope_theta: c.ropeTheta,
    bos_token_id: c.bosTokenId,
    eos_token_id: c.eosTokenIds.length === 1 ? c.eosTokenIds[0] : c.eosTokenIds,
    pad_token_id: c.padTokenId,
    tie_word_embeddings: true,
    torch_dtype: "float32",
    ...(isGemma2
      ? {
          sliding_window: c.slidingWindow,
          query_pre_attn_scalar: c.queryPreAttnScalar,
          attn_logit_softcapping: c.attnSoftcap,
          final_logit_softcapping: c.finalSoftcap,
          layer_types: c.layerTypes.map((t) => (t === "local" ? "sliding_attention" : "full_attention")),
          cache_implementation: "hybrid",
        }
      : {}),
  };
}

/** Parameter count of the model a config describes (tied embeddings counted once). */
export function parameterCount(c: GemmaConfig): number {
  const attention = c.dModel * c.headDim * (2 * c.nHeads + 2 * c.nKvHeads);
  const mlp = 3 * c.dModel * c.ffnDim;
  const norms = (c.sandwichNorms ? 4 : 2) * c.dModel;
  return c.vocabSize * c.dModel + c.nLayers * (attention + mlp + norms) + c.dModel;
}
