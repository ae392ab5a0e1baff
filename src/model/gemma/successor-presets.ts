/**
 * Gemma 3 and Gemma 4 presets, each written as the text config.json fields of the published
 * release and read by the same reader as a downloaded config.json (docs/spec/GEMMA3-4.md §7 names
 * the source of every value).
 */
import type { Json } from "../config-fields.js";
import type { GemmaConfig } from "./config-common.js";
import { gemma3ConfigFromHf, gemma4ConfigFromHf } from "./successor-config.js";

/** Gemma 3 (google/gemma-3-*-pt config.json; 4B-27B spell only these in text_config, the rest are Gemma3TextConfig defaults). */
const GEMMA3_FIELDS = {
  "gemma3-1b": {
    hidden_size: 1152,
    intermediate_size: 6912,
    num_hidden_layers: 26,
    num_attention_heads: 4,
    num_key_value_heads: 1,
    head_dim: 256,
    sliding_window: 512,
    max_position_embeddings: 32768,
    vocab_size: 262144,
    rope_theta: 1e6,
    rope_local_base_freq: 1e4,
  },
  "gemma3-4b": {
    hidden_size: 2560,
    intermediate_size: 10240,
    num_hidden_layers: 34,
    num_attention_heads: 8,
    num_key_value_heads: 4,
    sliding_window: 1024,
    rope_scaling: { rope_type: "linear", factor: 8 },
  },
  "gemma3-12b": {
    hidden_size: 3840,
    intermediate_size: 15360,
    num_hidden_layers: 48,
    num_attention_heads: 16,
    num_key_value_heads: 8,
    sliding_window: 1024,
    rope_scaling: { rope_type: "linear", factor: 8 },
  },
  "gemma3-27b": {
    hidden_size: 5376,
    intermediate_size: 21504,
    num_hidden_layers: 62,
    num_attention_heads: 32,
    num_key_value_heads: 16,
    head_dim: 128,
    query_pre_attn_scalar: 168,
    sliding_window: 1024,
    rope_scaling: { rope_type: "linear", factor: 8 },
  },
} satisfies Record<string, Json>;

const PROPORTIONAL_ROPE = {
  full_attention: { rope_type: "proportional", rope_theta: 1e6, partial_rotary_factor: 0.25 },
  sliding_attention: { rope_type: "default", rope_theta: 1e4 },
};
const layerPattern = (local: number, repeats: number) =>
  Array.from({ length: repeats }, () => [...Array<string>(local).fill("sliding_attention"), "full_attention"]).flat();

/** Gemma 4 (the variants of transformers' convert_gemma4_weights.py; absent fields are Gemma4TextConfig defaults). */
const GEMMA4_FIELDS = {
  "gemma4-e2b": {
    hidden_size: 1536,
    hidden_size_per_layer_input: 256,
    intermediate_size: 6144,
    num_hidden_layers: 35,
    layer_types: layerPattern(4, 7),
    num_attention_heads: 8,
    num_key_value_heads: 1,
    num_kv_shared_layers: 20,
    use_double_wide_mlp: true,
    final_logit_softcapping: 30,
    rope_parameters: PROPORTIONAL_ROPE,
  },
  "gemma4-e4b": {
    hidden_size: 2560,
    hidden_size_per_layer_input: 256,
    intermediate_size: 10240,
    num_hidden_layers: 42,
    layer_types: layerPattern(5, 7),
    num_attention_heads: 8,
    num_key_value_heads: 2,
    global_head_dim: 512,
    num_kv_shared_layers: 18,
    final_logit_softcapping: 30,
    rope_parameters: PROPORTIONAL_ROPE,
  },
  "gemma4-26b-a4b": {
    hidden_size: 2816,
    hidden_size_per_layer_input: 0,
    intermediate_size: 2112,
    num_hidden_layers: 30,
    layer_types: layerPattern(5, 5),
    num_attention_heads: 16,
    num_key_value_heads: 8,
    num_global_key_value_heads: 2,
    attention_k_eq_v: true,
    enable_moe_block: true,
    num_experts: 128,
    moe_intermediate_size: 704,
    top_k_experts: 8,
    sliding_window: 1024,
    final_logit_softcapping: 30,
    rope_parameters: PROPORTIONAL_ROPE,
    max_position_embeddings: 262144,
  },
  "gemma4-31b": {
    hidden_size: 5376,
    hidden_size_per_layer_input: 0,
    intermediate_size: 21504,
    num_hidden_layers: 60,
    layer_types: layerPattern(5, 10),
    num_attention_heads: 32,
    num_key_value_heads: 16,
    num_global_key_value_heads: 4,
    attention_k_eq_v: true,
    sliding_window: 1024,
    final_logit_softcapping: 30,
    rope_parameters: PROPORTIONAL_ROPE,
    max_position_embeddings: 262144,
  },
} satisfies Record<string, Json>;

function build<K extends string>(fields: Record<K, Json>, read: (hf: Json, source: string) => GemmaConfig): Record<K, GemmaConfig> {
  return Object.fromEntries(Object.entries<Json>(fields).map(([name, hf]) => [name, read(hf, `preset ${name}`)])) as Record<K, GemmaConfig>;
}

export const SUCCESSOR_PRESETS = {
  ...build(GEMMA3_FIELDS, (hf, source) => gemma3ConfigFromHf(hf, source, [])),
  ...build(GEMMA4_FIELDS, (hf, source) => gemma4ConfigFromHf(hf, source, [])),
};
