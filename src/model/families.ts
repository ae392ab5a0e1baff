/**
 * The model families side by side: which family a config.json describes, and what differs per
 * family where callers only need a summary (tensors, size, state memory).
 */
import { configFromHf } from "./gemma/config.js";
import { parseJsonObject } from "./config-fields.js";
import type { ModelConfig } from "./causal-lm.js";
import { KvCache } from "./kv-cache.js";
import { recurrentConfigFromHf, recurrentParameterCount } from "./recurrent-gemma/config.js";
import { RecurrentState } from "./recurrent-gemma/forward.js";
import { expectedRecurrentTensors } from "./recurrent-gemma/weights.js";
import { expectedTensors, parameterCount } from "./gemma/weights.js";

/** Parses a config.json of any supported family (gemma, gemma2, recurrent_gemma). */
export function parseModelConfigJson(text: string, source = "config.json"): ModelConfig {
  const json = parseJsonObject(text, source);
  return json["model_type"] === "recurrent_gemma" ? recurrentConfigFromHf(json, source) : configFromHf(json, source);
}

export function expectedTensorsFor(config: ModelConfig): Map<string, number[]> {
  return config.family === "recurrent_gemma" ? expectedRecurrentTensors(config) : expectedTensors(config);
}

export function parameterCountFor(config: ModelConfig): number {
  return config.family === "recurrent_gemma" ? recurrentParameterCount(config) : parameterCount(config);
}

/**
 * Decode-state bytes once the context is full (f32): Gemma's global layers hold every position
 * and local layers their window; RecurrentGemma's state never grows past its window and RNN state.
 */
export function fullStateBytes(config: ModelConfig): number {
  if (config.family === "recurrent_gemma") {
    const state = new RecurrentState(config);
    for (const ring of state.kv) ring?.reserve(config.attentionWindow);
    return state.bytes();
  }
  return new KvCache(config).distinctLayers().reduce((sum, l) => sum + 2 * 4 * l.ringSize * l.rowWidth, 0);
}

/** One line per aspect, for `gemma-ts info`. */
export function describeArchitecture(c: ModelConfig): string[] {
  if (c.family === "recurrent_gemma") {
    const attention = c.blockTypes.filter((t) => t === "attention").length;
    return [
      `layers       ${c.nLayers} (${c.nLayers - attention} recurrent RG-LRU width ${c.lruWidth}, ${attention} local attention with ` +
        `window ${c.attentionWindow})`,
      `dims         d_model ${c.dModel}, heads ${c.nHeads}/${c.nKvHeads} kv, head_dim ${c.headDim}, ffn ${c.ffnDim}, conv ` +
        `${c.convWidth}, vocab ${c.vocabSize}`,
      `attention    scale ${c.headDim}^-0.5, partial RoPE on ${c.rotaryDim} dims, final soft-cap ${c.finalSoftcap ?? "none"}, no ` +
        `context limit`,
    ];
  }
  const local = c.layerTypes.filter((t) => t === "local").length;
  return [
    `layers       ${c.nLayers} (${local} local with window ${c.slidingWindow ?? "-"}, ${c.nLayers - local} global)`,
    `dims         d_model ${c.dModel}, heads ${c.nHeads}/${c.nKvHeads} kv, head_dim ${c.headDim}, ffn ${c.ffnDim}, vocab ${c.vocabSize}`,
    `attention    scale ${c.queryPreAttnScalar}^-0.5, soft-caps ${c.attnSoftcap ?? "none"}/${c.finalSoftcap ?? "none"}, context ` +
      `${c.maxPositions}`,
  ];
}

export const FAMILY_NAMES: Record<ModelConfig["family"], string> = {
  gemma: "Gemma 1",
  gemma2: "Gemma 2",
  gemma3: "Gemma 3",
  gemma4: "Gemma 4",
  recurrent_gemma: "RecurrentGemma",
};
