/**
 * RecurrentGemma (Griffin) configuration: presets and the Hugging Face `recurrent_gemma`
 * config.json fields (RECURRENTGEMMA.md §1, §7).
 */
import { ConfigError } from "../../errors.js";
import { FieldReader, type Json } from "../config-fields.js";

export type BlockKind = "recurrent" | "attention";

export interface RecurrentGemmaConfig {
  family: "recurrent_gemma";
  vocabSize: number;
  dModel: number;
  nLayers: number;
  /** Attention query heads, and the number of diagonal blocks in the RG-LRU gates. */
  nHeads: number;
  /** Always 1 in the published models (multi-query attention). */
  nKvHeads: number;
  headDim: number;
  /** RG-LRU width R. */
  lruWidth: number;
  /** MLP expanded width E (HF intermediate_size / 2). */
  ffnDim: number;
  convWidth: number;
  /** A query sees itself and the `attentionWindow` previous tokens (W+1 keys, §5). */
  attentionWindow: number;
  blockTypes: BlockKind[];
  /** Rotated dims per head: the first partial_rotary_factor × head_dim. */
  rotaryDim: number;
  finalSoftcap: number | null;
  ropeTheta: number;
  rmsNormEps: number;
  /** The state is constant-size, so there is no hard context; this is a sanity bound only. */
  maxPositions: number;
  bosTokenId: number;
  eosTokenIds: number[];
  padTokenId: number;
}

function preset(p: { dModel: number; nLayers: number; nHeads: number }): RecurrentGemmaConfig {
  return {
    family: "recurrent_gemma",
    vocabSize: 256000,
    ...p,
    nKvHeads: 1,
    headDim: p.dModel / p.nHeads,
    lruWidth: p.dModel,
    ffnDim: 3 * p.dModel,
    convWidth: 4,
    attentionWindow: 2048,
    blockTypes: Array.from({ length: p.nLayers }, (_, i) => (i % 3 === 2 ? "attention" : "recurrent")),
    rotaryDim: p.dModel / p.nHeads / 2,
    finalSoftcap: 30,
    ropeTheta: 10000,
    rmsNormEps: 1e-6,
    maxPositions: Number.MAX_SAFE_INTEGER,
    bosTokenId: 2,
    eosTokenIds: [1],
    padTokenId: 0,
  };
}

/** RECURRENTGEMMA.md §1 (2B) and the 9B (width 4096, 38 blocks, 16 heads). */
export const RECURRENT_PRESETS = {
  "recurrentgemma-2b": preset({ dModel: 2560, nLayers: 26, nHeads: 10 }),
  "recurrentgemma-9b": preset({ dModel: 4096, nLayers: 38, nHeads: 16 }),
} satisfies Record<string, RecurrentGemmaConfig>;

export function recurrentConfigFromHf(hf: Json, source = "config.json"): RecurrentGemmaConfig {
  const read = new FieldReader(hf, source);
  const fail = (field: string, expected: string): never => read.reject(field, expected);
  const int = (field: string, fallback?: number): number =>
    fallback === undefined ? read.positiveInt(field) : read.positiveIntOr(field, fallback);
  const num = (field: string, fallback: number): number => read.positiveNumberOr(field, fallback);
  const dModel = int("hidden_size");
  const nLayers = int("num_hidden_layers");
  const nHeads = int("num_attention_heads");
  const nKvHeads = int("num_key_value_heads", 1);
  const headDim = int("head_dim", dModel / nHeads);
  const lruWidth = int("lru_width", dModel);
  if (nHeads % nKvHeads !== 0)
    throw new ConfigError(
      `${source}: num_attention_heads (${nHeads}) must be a multiple of num_key_value_heads (${nKvHeads})`,
      "num_key_value_heads",
    );
  if (lruWidth % nHeads !== 0)
    throw new ConfigError(
      `${source}: lru_width (${lruWidth}) must be a multiple of num_attention_heads (${nHeads}) for the block-diagonal gates`,
      "lru_width",
    );
  const intermediate = int("intermediate_size");
  if (intermediate % 2 !== 0) fail("intermediate_size", "even (HF stores twice the MLP width)");
  const rawTypes = hf["block_types"];
  if (!Array.isArray(rawTypes) || rawTypes.length === 0 || !rawTypes.every((t) => t === "recurrent" || t === "attention")) {
    fail("block_types", 'a non-empty list of "recurrent" and "attention"');
  }
  const pattern = rawTypes as BlockKind[];
  const factor = hf["partial_rotary_factor"] ?? 0.5;
  if (typeof factor !== "number" || !(factor > 0 && factor <= 1)) fail("partial_rotary_factor", "a number in (0, 1]");
  const rotaryDim = Math.round(headDim * (factor as number));
  if (rotaryDim % 2 !== 0)
    throw new ConfigError(`${source}: partial_rotary_factor × head_dim must be even, found ${rotaryDim}`, "partial_rotary_factor");
  const cap = hf["logits_soft_cap"];
  if (hf["embeddings_scale_by_sqrt_dim"] === false)
    throw new ConfigError(`${source}: embeddings_scale_by_sqrt_dim false is not supported`, "embeddings_scale_by_sqrt_dim");
  const activation = hf["hidden_activation"] ?? "gelu_pytorch_tanh";
  if (activation !== "gelu_pytorch_tanh" && activation !== "gelu_new") fail("hidden_activation", '"gelu_pytorch_tanh"');
  const eosTokenIds = read.tokenIds("eos_token_id", [1]);
  return {
    family: "recurrent_gemma",
    vocabSize: int("vocab_size"),
    dModel,
    nLayers,
    nHeads,
    nKvHeads,
    headDim,
    lruWidth,
    ffnDim: intermediate / 2,
    convWidth: int("conv1d_width", 4),
    attentionWindow: int("attention_window_size"),
    blockTypes: Array.from({ length: nLayers }, (_, i) => pattern[i % pattern.length]!),
    rotaryDim,
    finalSoftcap: cap === null ? null : num("logits_soft_cap", 30),
    ropeTheta: num("rope_theta", 10000),
    rmsNormEps: num("rms_norm_eps", 1e-6),
    maxPositions: Number.MAX_SAFE_INTEGER,
    bosTokenId: read.tokenIdOr("bos_token_id", 2),
    eosTokenIds,
    padTokenId: read.tokenIdOr("pad_token_id", 0),
  };
}

export function recurrentParameterCount(c: RecurrentGemmaConfig): number {
  const mlp = 2 * (c.dModel * c.ffnDim + c.ffnDim) + c.ffnDim * c.dModel + c.dModel;
  const recurrent =
    2 * (c.dModel * c.lruWidth + c.lruWidth) +
    (c.lruWidth * c.dModel + c.dModel) +
    c.lruWidth * (c.convWidth + 1) +
    c.lruWidth +
    2 * (c.lruWidth * (c.lruWidth / c.nHeads) + c.lruWidth);
  const attention = c.dModel * c.nHeads * c.headDim + 2 * c.dModel * c.nKvHeads * c.headDim + c.nHeads * c.headDim * c.dModel + c.dModel;
  const blocks = c.blockTypes.reduce((s, t) => s + mlp + 2 * c.dModel + (t === "recurrent" ? recurrent : attention), 0);
  return c.vocabSize * c.dModel + blocks + c.dModel;
}
