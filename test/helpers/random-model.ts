/**
 * Seeded random Gemma checkpoints written to a temp folder, drawn like the reference fixtures
 * (GEMMA2.md §8) so attention reaches the soft-cap and logits are not trivially flat.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { Rng } from "../../src/generate/rng.js";
import { parseModelConfigJson } from "../../src/model/families.js";
import type { ModelConfig } from "../../src/model/causal-lm.js";
import { expectedTensorsFor } from "../../src/model/families.js";
import { encodeSafetensors, type NamedTensor } from "../../src/weights/safetensors-writer.js";
import { tempDir } from "./temp.js";

/** A one-layer Gemma 2 student of d_model 16 and context 64: the smallest config the CLI training tests train. */
export function tinyStudentJson(vocab: number): Record<string, unknown> {
  return tinyGemma2Json({
    vocab_size: vocab,
    hidden_size: 16,
    intermediate_size: 32,
    num_attention_heads: 2,
    num_key_value_heads: 1,
    head_dim: 8,
    query_pre_attn_scalar: 8,
    num_hidden_layers: 1,
    sliding_window: 8,
    max_position_embeddings: 64,
  });
}

/** One chat example in finetune's JSONL format, with its newline. */
export const CHAT_EXAMPLE_LINE = `${JSON.stringify({
  messages: [
    { role: "user", content: "Who?" },
    { role: "assistant", content: "God." },
  ],
})}\n`;

export function tinyGemma2Json(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    model_type: "gemma2",
    architectures: ["Gemma2ForCausalLM"],
    hidden_size: 32,
    num_hidden_layers: 4,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    head_dim: 8,
    intermediate_size: 64,
    vocab_size: 96,
    sliding_window: 6,
    query_pre_attn_scalar: 8,
    attn_logit_softcapping: 50,
    final_logit_softcapping: 30,
    max_position_embeddings: 256,
    rms_norm_eps: 1e-6,
    rope_theta: 10000,
    hidden_activation: "gelu_pytorch_tanh",
    ...overrides,
  };
}

function gaussian(rng: Rng): number {
  return Math.sqrt(-2 * Math.log(1 - rng.next())) * Math.cos(2 * Math.PI * rng.next());
}

export function randomTensors(config: ModelConfig, seed: number): NamedTensor[] {
  const rng = new Rng(seed);
  const tensors: NamedTensor[] = [];
  for (const [name, shape] of expectedTensorsFor(config)) {
    const size = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(size);
    let mean = 0;
    let std = 1 / Math.sqrt(shape[1] ?? 1);
    if (name.includes("embed_tokens")) std = 0.1;
    else if (name === "model.norm.weight" || name === "model.final_norm.weight") [mean, std] = [12, 0.5];
    else if (name.endsWith(".bias") || name.endsWith("_bias")) std = 0.1;
    else if (name.endsWith("recurrent_param")) [mean, std] = [1, 0.5];
    else if (name.endsWith("layernorm.weight")) [mean, std] = [name.includes("post_") ? 1 : 0, 0.3];
    else if (name.includes("q_proj") || name.includes("k_proj")) std = 4 / Math.sqrt(config.dModel);
    for (let i = 0; i < size; i++) data[i] = mean + std * gaussian(rng);
    tensors.push({ name, dtype: "f32", shape, data });
  }
  return tensors;
}

/** Writes config.json + model.safetensors into a new temp folder and returns its path. */
export function writeRandomModel(hfConfig: Record<string, unknown>, seed = 7, transform?: (t: NamedTensor[]) => NamedTensor[]): string {
  const dir = tempDir("gemma-ts-test");
  const config = parseModelConfigJson(JSON.stringify(hfConfig));
  const tensors = transform ? transform(randomTensors(config, seed)) : randomTensors(config, seed);
  writeFileSync(join(dir, "config.json"), JSON.stringify(hfConfig));
  writeFileSync(join(dir, "model.safetensors"), encodeSafetensors(tensors));
  return dir;
}

/**
 * A tiny Gemma 4 text config with every Gemma 4 feature at once: per-layer inputs, a wider global
 * attention with fewer KV heads, keys as values, KV sharing over the last 4 layers with a
 * double-wide MLP there, mixture of experts, proportional RoPE, final soft-cap.
 */
export function tinyGemma4Json(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const kinds = ["sliding_attention", "sliding_attention", "sliding_attention", "full_attention"];
  return {
    model_type: "gemma4_text",
    vocab_size: 512,
    vocab_size_per_layer_input: 512,
    hidden_size: 32,
    intermediate_size: 64,
    num_hidden_layers: 8,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    head_dim: 8,
    layer_types: [...kinds, ...kinds],
    per_layer_config: { "3": { head_dim: 16, num_key_value_heads: 1 }, "7": { head_dim: 16, num_key_value_heads: 1 } },
    attention_k_eq_v: true,
    num_kv_shared_layers: 4,
    use_double_wide_mlp: true,
    hidden_size_per_layer_input: 4,
    enable_moe_block: true,
    num_experts: 4,
    top_k_experts: 2,
    moe_intermediate_size: 16,
    sliding_window: 6,
    max_position_embeddings: 512,
    final_logit_softcapping: 30,
    rope_parameters: {
      full_attention: { rope_type: "proportional", rope_theta: 1e6, partial_rotary_factor: 0.25 },
      sliding_attention: { rope_type: "default", rope_theta: 1e4 },
    },
    ...overrides,
  };
}

export function tinyRecurrentGemmaJson(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    model_type: "recurrent_gemma",
    vocab_size: 96,
    hidden_size: 32,
    intermediate_size: 128,
    num_hidden_layers: 6,
    num_attention_heads: 4,
    num_key_value_heads: 1,
    head_dim: 8,
    lru_width: 32,
    attention_window_size: 6,
    conv1d_width: 4,
    logits_soft_cap: 30,
    partial_rotary_factor: 0.5,
    block_types: ["recurrent", "recurrent", "attention"],
    ...overrides,
  };
}

export const FIXTURES = new URL("../fixtures/", import.meta.url).pathname;
