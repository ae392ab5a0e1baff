/**
 * Gemma model configuration: the Gemma 1/2 presets (GEMMA2.md §1, §4), a strict reader of Hugging
 * Face \`config.json\` for every Gemma decoder generation (Gemma 3 and 4 in \`successor-config.ts\`),
 * and the Gemma 1/2 config.json a trained checkpoint saves.
 */
import { ConfigError } from "../../errors.js";
import { FieldReader, parseJsonObject, type Json } from "../config-fields.js";
import {
  checkSharedFields,
  defaultLayerTypes,
  defaultRope,
  readActivation,
  readLayerTypes,
  uniformLayers,
  type AttentionKind,
  type GemmaConfig,
  type ModelFamily,
} from "./config-common.js";
import { gemma3ConfigFromHf, gemma4ConfigFromHf } from "./successor-config.js";
import { SUCCESSOR_PRESETS } from "./successor-presets.js";

export * from "./config-common.js";

/** Fields every Gemma 1 and 2 release shares (a fresh object each time: presets must not share arrays). */
function sharedPresetFields() {
  return {
    vocabSize: 256000,
    activation: "gelu_tanh" as const,
    rope: defaultRope(10000),
    maxPositions: 8192,
    rmsNormEps: 1e-6,
    bosTokenId: 2,
    eosTokenIds: [1],
    padTokenId: 0,
    ...gemma12Features(),
  };
}

/** The Gemma 3/4 features Gemma 1 and 2 do not have. */
function gemma12Features() {
  return {
    qkNorm: false,
    valueNorm: false,
    normGainOffset: 1 as const,
    perLayerInput: null,
    moe: null,
    layerScalars: false,
    unsupportedInputs: [],
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
    layers: uniformLayers(p.nLayers, p.headDim, p.nKvHeads, p.ffnDim),
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
    layers: uniformLayers(p.nLayers, 256, p.nKvHeads, p.ffnDim),
    layerTypes: new Array<AttentionKind>(p.nLayers).fill("global"),
    slidingWindow: null,
    queryPreAttnScalar: 256,
    attnSoftcap: null,
    finalSoftcap: null,
    sandwichNorms: false,
    ...sharedPresetFields(),
  };
}

/** The published configurations (GEMMA2.md §1 and §4; Gemma 3 and 4: successor-presets.ts). */
export const PRESETS = {
  "gemma2-2b": gemma2Preset({ nLayers: 26, dModel: 2304, nHeads: 8, nKvHeads: 4, headDim: 256, ffnDim: 9216, queryPreAttnScalar: 256 }),
  "gemma2-9b": gemma2Preset({ nLayers: 42, dModel: 3584, nHeads: 16, nKvHeads: 8, headDim: 256, ffnDim: 14336, queryPreAttnScalar: 256 }),
  "gemma2-27b": gemma2Preset({ nLayers: 46, dModel: 4608, nHeads: 32, nKvHeads: 16, headDim: 128, ffnDim: 36864, queryPreAttnScalar: 144 }),
  "gemma-2b": gemma1Preset({ nLayers: 18, dModel: 2048, nHeads: 8, nKvHeads: 1, ffnDim: 16384 }),
  "gemma-7b": gemma1Preset({ nLayers: 28, dModel: 3072, nHeads: 16, nKvHeads: 16, ffnDim: 24576 }),
  ...SUCCESSOR_PRESETS,
} satisfies Record<string, GemmaConfig>;

export type PresetName = keyof typeof PRESETS;

/** Parses the text of a Gemma config.json (any generation); \`source\` names the file in errors. */
export function parseConfigJson(text: string, source = "config.json"): GemmaConfig {
  return configFromHf(parseJsonObject(text, source), source);
}

/**
 * Builds a GemmaConfig from a Hugging Face config.json object: \`gemma\`, \`gemma2\`, \`gemma3_text\`,
 * \`gemma4_text\`, or the text part (\`text_config\`) of a multimodal \`gemma3\` / \`gemma4\` checkpoint.
 */
export function configFromHf(hf: Json, source = "config.json"): GemmaConfig {
  const modelType = hf["model_type"];
  switch (modelType) {
    case "gemma":
    case "gemma2":
      return gemma12ConfigFromHf(hf, source);
    case "gemma3_text":
      return gemma3ConfigFromHf(hf, source, []);
    case "gemma4_text":
      return gemma4ConfigFromHf(hf, source, []);
    case "gemma3":
    case "gemma4":
      return multimodalTextConfig(hf, modelType, source);
  }
  const found = modelType === undefined ? "no model_type" : `model_type ${JSON.stringify(modelType)}`;
  throw new ConfigError(
    `${source}: unsupported model: ${found} (gemma-ts reads "gemma", "gemma2", "gemma3_text", "gemma3", "gemma4_text", "gemma4" ` +
      `and "recurrent_gemma")`,
    "model_type",
  );
}

/** The language model of a multimodal checkpoint: its \`text_config\`, noting the towers gemma-ts does not run. */
function multimodalTextConfig(hf: Json, modelType: "gemma3" | "gemma4", source: string): GemmaConfig {
  const text = hf["text_config"] ?? {};
  if (typeof text !== "object" || text === null || Array.isArray(text))
    throw new ConfigError(`${source}: text_config must be an object`, "text_config");
  const unsupported: ("image" | "audio")[] = [];
  if (hf["vision_config"] !== undefined && hf["vision_config"] !== null) unsupported.push("image");
  if (hf["audio_config"] !== undefined && hf["audio_config"] !== null) unsupported.push("audio");
  // Token ids live at the top level of a multimodal config.json; the text config inherits them.
  const merged: Json = { ...text };
  for (const field of ["bos_token_id", "eos_token_id", "pad_token_id", "tie_word_embeddings"]) {
    if (merged[field] === undefined && hf[field] !== undefined) merged[field] = hf[field];
  }
  const where = `${source} (text_config)`;
  return modelType === "gemma3" ? gemma3ConfigFromHf(merged, where, unsupported) : gemma4ConfigFromHf(merged, where, unsupported);
}

/** Builds a Gemma 1/2 GemmaConfig from the fields of a Hugging Face config.json object (`model_type` checked by the caller). */
export function gemma12ConfigFromHf(hf: Json, source: string): GemmaConfig {
  const read = new FieldReader(hf, source);
  const family: ModelFamily = hf["model_type"] === "gemma2" ? "gemma2" : "gemma";
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
  const layerTypes = isGemma2
    ? readLayerTypes(hf, nLayers, source, defaultLayerTypes(nLayers))
    : new Array<AttentionKind>(nLayers).fill("global");
  const ffnDim = read.positiveInt("intermediate_size");

  const config: GemmaConfig = {
    family,
    vocabSize: read.positiveInt("vocab_size"),
    dModel,
    nLayers,
    nHeads,
    nKvHeads,
    headDim,
    ffnDim,
    layers: uniformLayers(nLayers, headDim, nKvHeads, ffnDim),
    layerTypes,
    slidingWindow,
    // Gemma 1 scales by 1/sqrt(head_dim) (§4); Gemma 2 names its scalar (§1: 144 for the 27B).
    queryPreAttnScalar: isGemma2 ? read.positiveNumber("query_pre_attn_scalar") : headDim,
    attnSoftcap: isGemma2 ? read.softcap("attn_logit_softcapping", 50) : null,
    finalSoftcap: isGemma2 ? read.softcap("final_logit_softcapping", 30) : null,
    sandwichNorms: isGemma2,
    activation: readActivation(hf, source),
    rope: defaultRope(readRopeTheta(read, hf, source)),
    maxPositions: read.optionalPositiveInt("max_position_embeddings") ?? 8192,
    rmsNormEps: read.optionalPositiveNumber("rms_norm_eps") ?? 1e-6,
    bosTokenId: read.optionalTokenId("bos_token_id") ?? 2,
    eosTokenIds: read.tokenIds("eos_token_id", [1]),
    padTokenId: read.optionalTokenId("pad_token_id") ?? 0,
    ...gemma12Features(),
  };
  checkSharedFields(hf, config, source);
  return config;
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
  if (c.family !== "gemma" && c.family !== "gemma2") throw new ConfigError(`writing a ${c.family} config.json is not supported`);
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
    rope_theta: c.rope.global.theta,
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
