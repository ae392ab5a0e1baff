/**
 * What the configs of every Gemma decoder generation (1, 2, 3, 4) share: the \`GemmaConfig\` the
 * model code branches on (never on a model's name) and readers of the config.json fields they
 * spell alike.
 */
import type { Activation } from "../../backend/kernels.js";
import { ConfigError } from "../../errors.js";
import type { Json } from "../config-fields.js";

export type ModelFamily = "gemma" | "gemma2" | "gemma3" | "gemma4";
export type AttentionKind = "local" | "global";

/** Rotary embedding of one attention kind (docs/spec/GEMMA3-4.md §3). */
export interface RopeSetting {
  /** default: every pair rotates; linear: frequencies divided by `factor`; proportional: only `partialRotary` of the pairs rotate. */
  type: "default" | "linear" | "proportional";
  theta: number;
  factor: number;
  partialRotary: number;
}

/** One layer's attention and MLP shape: Gemma 1-3 repeat one shape, Gemma 4 varies it per layer. */
export interface LayerShape {
  headDim: number;
  nKvHeads: number;
  /** Gemma 4 `attention_k_eq_v` on global layers: no v_proj; the values are the raw key projection. */
  valuesFromKeys: boolean;
  /** The layer whose keys and values this layer attends over: itself, or an earlier one (KV sharing). */
  kvSource: number;
  ffnDim: number;
}

/** Gemma 4 mixture-of-experts block beside the dense MLP. */
export interface MoeConfig {
  experts: number;
  topK: number;
  expertDim: number;
}

/** Gemma 4 per-layer inputs: a second embedding table packed [vocab, nLayers·dim] feeding every layer. */
export interface PerLayerInputConfig {
  dim: number;
  vocabSize: number;
}

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
  rope: Record<AttentionKind, RopeSetting>;
  /** Per layer; Gemma 1-3: every entry is (headDim, nKvHeads, ffnDim) on its own keys. */
  layers: LayerShape[];
  /** Gemma 3/4: RMSNorm of every query and key head before RoPE. */
  qkNorm: boolean;
  /** Gemma 4: RMSNorm without gain of every value head. */
  valueNorm: boolean;
  /** RMSNorm gain = offset + stored weight: 1 for Gemma 1-3 (weights stored as offsets from 1), 0 for Gemma 4. */
  normGainOffset: 0 | 1;
  perLayerInput: PerLayerInputConfig | null;
  moe: MoeConfig | null;
  /** Gemma 4: every layer's output is multiplied by its stored `layer_scalar`. */
  layerScalars: boolean;
  /** Parts of a multimodal checkpoint gemma-ts does not run (their tensors are skipped). */
  unsupportedInputs: ("image" | "audio")[];
  maxPositions: number;
  rmsNormEps: number;
  bosTokenId: number;
  eosTokenIds: number[];
  padTokenId: number;
}

/** Plain RoPE with one base on both layer kinds (Gemma 1/2). */
export function defaultRope(theta: number): Record<AttentionKind, RopeSetting> {
  const setting: RopeSetting = { type: "default", theta, factor: 1, partialRotary: 1 };
  return { local: { ...setting }, global: { ...setting } };
}

/** Every layer with the same attention and MLP shape, attending over its own keys. */
export function uniformLayers(nLayers: number, headDim: number, nKvHeads: number, ffnDim: number): LayerShape[] {
  return Array.from({ length: nLayers }, (_, i) => ({ headDim, nKvHeads, valuesFromKeys: false, kvSource: i, ffnDim }));
}

/** Layer i is local when i is even, global when odd; layer 0 is local (§2.2). */
export function defaultLayerTypes(nLayers: number): AttentionKind[] {
  return Array.from({ length: nLayers }, (_, i) => (i % 2 === 0 ? "local" : "global"));
}

/** Checks every family shares: tied embeddings, special token ids inside the vocabulary. */
export function checkSharedFields(hf: Json, config: GemmaConfig, source: string): void {
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
}

/** `layer_types` as attention kinds, or `fallback` when the config has none. */
export function readLayerTypes(hf: Json, nLayers: number, source: string, fallback: AttentionKind[]): AttentionKind[] {
  const raw = hf["layer_types"];
  if (raw === undefined || raw === null) return fallback;
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
export function readActivation(hf: Json, source: string): Activation {
  const explicit = hf["hidden_activation"];
  const legacy = hf["hidden_act"];
  const name = explicit ?? legacy ?? "gelu_pytorch_tanh";
  if (name === "gelu_pytorch_tanh" || name === "gelu_new" || name === "gelu_fast") return "gelu_tanh";
  if (name === "gelu") return explicit === undefined || explicit === null ? "gelu_tanh" : "gelu_exact";
  const field = explicit !== undefined && explicit !== null ? "hidden_activation" : "hidden_act";
  throw new ConfigError(`${source}: ${field} ${JSON.stringify(name)} is not supported (expected "gelu_pytorch_tanh" or "gelu")`, field);
}
