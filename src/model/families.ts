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
import { activeParameterCount, expectedTensors, parameterCount, skippedTensors } from "./gemma/weights.js";
import type { GemmaConfig, RopeSetting } from "./gemma/config.js";

/** Parses a config.json of any supported family (gemma, gemma2, recurrent_gemma). */
export function parseModelConfigJson(text: string, source = "config.json"): ModelConfig {
  const json = parseJsonObject(text, source);
  return json["model_type"] === "recurrent_gemma" ? recurrentConfigFromHf(json, source) : configFromHf(json, source);
}

export function expectedTensorsFor(config: ModelConfig): Map<string, number[]> {
  return config.family === "recurrent_gemma" ? expectedRecurrentTensors(config) : expectedTensors(config);
}

/** Tensors a checkpoint may hold that the config rightly does not read. */
export function skippedTensorsFor(config: ModelConfig): Set<string> {
  return config.family === "recurrent_gemma" ? new Set() : skippedTensors(config);
}

export function parameterCountFor(config: ModelConfig): number {
  return config.family === "recurrent_gemma" ? recurrentParameterCount(config) : parameterCount(config);
}

/** Parameters one token uses (below the total only for mixture-of-experts models). */
export function activeParameterCountFor(config: ModelConfig): number {
  return config.family === "recurrent_gemma" ? recurrentParameterCount(config) : activeParameterCount(config);
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
  const shared = c.layers.filter((l, i) => l.kvSource !== i).length;
  const lines = [
    `layers       ${c.nLayers} (${local} local with window ${c.slidingWindow ?? "-"}, ${c.nLayers - local} global` +
      `${shared > 0 ? `; the last ${shared} reuse earlier layers' keys and values` : ""})`,
    `dims         d_model ${c.dModel}, heads ${c.nHeads}/${c.nKvHeads} kv, head_dim ${c.headDim}${globalShapeText(c)}, ffn ` +
      `${distinct(c.layers.map((l) => l.ffnDim))}, vocab ${c.vocabSize}`,
    `attention    scale ${c.queryPreAttnScalar === 1 ? "1 (QK-norm)" : `${c.queryPreAttnScalar}^-0.5`}, soft-caps ` +
      `${c.attnSoftcap ?? "none"}/${c.finalSoftcap ?? "none"}, context ${c.maxPositions}${c.qkNorm ? ", QK-norm" : ""}` +
      `${c.layers.some((l) => l.valuesFromKeys) ? ", keys = values on global layers" : ""}`,
    `rope         local ${ropeText(c.rope.local)}, global ${ropeText(c.rope.global)}`,
  ];
  if (c.perLayerInput) lines.push(`per-layer    inputs of ${c.perLayerInput.dim} per layer from a ${c.perLayerInput.vocabSize}-row table`);
  if (c.moe) lines.push(`experts      ${c.moe.experts} of width ${c.moe.expertDim}, top ${c.moe.topK} per token, beside the dense MLP`);
  if (c.unsupportedInputs.length > 0) lines.push(`inputs       text only (${c.unsupportedInputs.join(" and ")} input not supported yet)`);
  return lines;
}

/** The distinct values of a per-layer list, joined ("256/512"). */
const distinct = (values: number[]) => [...new Set(values)].join("/");

/** Where global layers have another attention shape (Gemma 4): " (global layers: 2 kv, head_dim 512)". */
function globalShapeText(c: GemmaConfig): string {
  const global = c.layers.find((l, i) => c.layerTypes[i] === "global" && (l.headDim !== c.headDim || l.nKvHeads !== c.nKvHeads));
  return global ? ` (global layers: ${global.nKvHeads} kv, head_dim ${global.headDim})` : "";
}

function ropeText(r: RopeSetting): string {
  const extra = r.type === "linear" ? ` linear x${r.factor}` : r.type === "proportional" ? ` on ${r.partialRotary * 100}% of the dims` : "";
  return `base ${r.theta}${extra}`;
}

export const FAMILY_NAMES: Record<ModelConfig["family"], string> = {
  gemma: "Gemma 1",
  gemma2: "Gemma 2",
  gemma3: "Gemma 3 (text)",
  gemma4: "Gemma 4 (text)",
  recurrent_gemma: "RecurrentGemma",
};
