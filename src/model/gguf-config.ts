/**
 * A Gemma config as GGUF metadata and back, in llama.cpp's keys for the `gemma`, `gemma2`, `gemma3`
 * and `gemma4` architectures (its convert_hf_to_gguf.py writes them): the reader builds the
 * config.json fields and hands them to the same reader a config.json goes through, so one set of
 * rules checks both.
 */
import { configFromHf, defaultLayerTypes, type GemmaConfig } from "./gemma/config.js";
import { CheckpointError, ConfigError } from "../errors.js";
import type { GgufFile, GgufMetadataReader } from "../weights/gguf.js";
import { gguv, type GgufValue } from "../weights/gguf-values.js";

/** Our own metadata key: llama.cpp infers this scalar from the model size (27B: d_model / heads). */
export const QUERY_SCALAR_KEY = (arch: string) => `${arch}.attention.query_pre_attn_scalar`;

const ARCHITECTURES = ["gemma", "gemma2", "gemma3", "gemma4"] as const;
type Architecture = (typeof ARCHITECTURES)[number];

/**
 * llama.cpp writes Gemma 4's proportional RoPE as `rope_freqs`: factor 1 on the rotated pairs and
 * 1e30 (never turning) on the rest; the rotated share is read back from it.
 */
export const ROPE_FREQS_TENSOR = "rope_freqs.weight";

/** GemmaConfig from GGUF metadata, checked by the same rules as a config.json; `ropeFreqs` is the rope_freqs tensor where present. */
export function configFromGguf(
  meta: GgufMetadataReader,
  file: GgufFile,
  source: string,
  ropeFreqs: Float32Array | null = null,
): GemmaConfig {
  const arch = meta.string("general.architecture");
  if (!(ARCHITECTURES as readonly string[]).includes(arch)) {
    throw new ConfigError(
      `${source}: general.architecture is ${JSON.stringify(arch)}; gemma-ts reads GGUF files of ` +
        ARCHITECTURES.map((a) => `"${a}"`).join(", "),
      "general.architecture",
    );
  }
  const key = (k: string) => `${arch}.${k}`;
  const dModel = meta.number(key("embedding_length"));
  const nLayers = meta.number(key("block_count"));
  const nHeads = meta.number(key("attention.head_count"));
  const headDim =
    meta.optionalNumber(key("attention.key_length_swa")) ?? meta.optionalNumber(key("attention.key_length")) ?? dModel / nHeads;
  const valueDim = meta.optionalNumber(key("attention.value_length_swa")) ?? meta.optionalNumber(key("attention.value_length")) ?? headDim;
  if (valueDim !== headDim)
    throw new ConfigError(
      `${source}: ${key("attention.value_length")} ${valueDim} differs from key_length ${headDim}`,
      key("attention.value_length"),
    );
  const embedding = file.tensors.get("token_embd.weight");
  if (!embedding) throw new CheckpointError(`${source}: missing tensor token_embd.weight`, source, "token_embd.weight");
  const kvHeads = perLayer(meta.optionalNumbers(key("attention.head_count_kv")) ?? nHeads, nLayers, source, key("attention.head_count_kv"));
  const ffn = perLayer(
    meta.optionalNumbers(key("feed_forward_length")) ?? meta.number(key("feed_forward_length")),
    nLayers,
    source,
    key("feed_forward_length"),
  );
  const hf: Record<string, unknown> = {
    model_type: arch === "gemma3" || arch === "gemma4" ? `${arch}_text` : arch,
    hidden_size: dModel,
    num_hidden_layers: nLayers,
    num_attention_heads: nHeads,
    num_key_value_heads: kvHeads[0],
    head_dim: headDim,
    intermediate_size: ffn[0],
    vocab_size: embedding.shape[0],
    max_position_embeddings: meta.optionalNumber(key("context_length")),
    rms_norm_eps: meta.optionalNumber(key("attention.layer_norm_rms_epsilon")),
    rope_theta: meta.optionalNumber(key("rope.freq_base")),
    bos_token_id: meta.optionalNumber("tokenizer.ggml.bos_token_id"),
    eos_token_id: meta.optionalNumber("tokenizer.ggml.eos_token_id"),
    pad_token_id: meta.optionalNumber("tokenizer.ggml.padding_token_id"),
  };
  if (arch === "gemma2") {
    hf["sliding_window"] = meta.optionalNumber(key("attention.sliding_window")) ?? 4096;
    hf["attn_logit_softcapping"] = meta.optionalNumber(key("attn_logit_softcapping")) ?? 50;
    hf["final_logit_softcapping"] = meta.optionalNumber(key("final_logit_softcapping")) ?? 30;
    // llama.cpp scales the 27B (46 layers) by d_model / heads and the others by head_dim.
    hf["query_pre_attn_scalar"] = meta.optionalNumber(QUERY_SCALAR_KEY(arch)) ?? (nLayers === 46 ? dModel / nHeads : headDim);
  }
  if (arch === "gemma3" || arch === "gemma4") {
    const swa = meta.optionalBooleans(key("attention.sliding_window_pattern"));
    if (swa && swa.length !== nLayers)
      throw new ConfigError(
        `${source}: ${key("attention.sliding_window_pattern")} has ${swa.length} entries for ${nLayers} layers`,
        key("attention.sliding_window_pattern"),
      );
    if (swa) hf["layer_types"] = swa.map((local) => (local ? "sliding_attention" : "full_attention"));
    hf["sliding_window"] = meta.optionalNumber(key("attention.sliding_window"));
    hf["final_logit_softcapping"] = meta.optionalNumber(key("final_logit_softcapping")) ?? null;
    const localTheta = meta.optionalNumber(key("rope.freq_base_swa")) ?? 1e4;
    const globalTheta = meta.optionalNumber(key("rope.freq_base")) ?? 1e6;
    if (arch === "gemma3") {
      hf["attn_logit_softcapping"] = meta.optionalNumber(key("attn_logit_softcapping")) ?? null;
      // llama.cpp scales the 27B (62 layers) by d_model / heads and the others by head_dim.
      hf["query_pre_attn_scalar"] = meta.optionalNumber(QUERY_SCALAR_KEY(arch)) ?? (nLayers === 62 ? dModel / nHeads : headDim);
      const scaling = meta.optionalString(key("rope.scaling.type"));
      const factor = meta.optionalNumber(key("rope.scaling.factor"));
      hf["rope_parameters"] = {
        sliding_attention: { rope_type: "default", rope_theta: localTheta },
        full_attention:
          scaling === "linear" && factor !== undefined && factor !== 1
            ? { rope_type: "linear", rope_theta: globalTheta, factor }
            : { rope_type: "default", rope_theta: globalTheta },
      };
    } else {
      Object.assign(hf, gemma4Fields(meta, file, key, { nLayers, headDim, kvHeads, ffn, swa, ropeFreqs, localTheta, globalTheta }, source));
    }
  }
  return configFromHf(hf, `${source} (GGUF metadata)`);
}

/** A scalar or per-layer list as one value per layer. */
function perLayer(value: number | number[], nLayers: number, source: string, field: string): number[] {
  if (!Array.isArray(value)) return new Array<number>(nLayers).fill(value);
  if (value.length !== nLayers) throw new ConfigError(`${source}: ${field} has ${value.length} entries for ${nLayers} layers`, field);
  return value;
}

interface Gemma4Shape {
  nLayers: number;
  headDim: number;
  kvHeads: number[];
  ffn: number[];
  swa: boolean[] | undefined;
  ropeFreqs: Float32Array | null;
  localTheta: number;
  globalTheta: number;
}

/** Gemma 4's config.json fields from llama.cpp's gemma4 keys and the tensors present. */
function gemma4Fields(meta: GgufMetadataReader, file: GgufFile, key: (k: string) => string, s: Gemma4Shape, source: string) {
  const shared = meta.optionalNumber(key("attention.shared_kv_layers")) ?? 0;
  const globalHeadDim = meta.optionalNumber(key("attention.key_length")) ?? s.headDim;
  // Without the pattern key transformers' default holds: every 6th layer global.
  const local = s.swa ?? Array.from({ length: s.nLayers }, (_, i) => (i + 1) % 6 !== 0);
  const perLayerConfig: Record<string, Record<string, number>> = {};
  for (let i = 0; i < s.nLayers; i++) {
    const override: Record<string, number> = {};
    if (!local[i]) override["head_dim"] = globalHeadDim;
    if (s.kvHeads[i] !== s.kvHeads[0]) override["num_key_value_heads"] = s.kvHeads[i]!;
    if (Object.keys(override).length > 0) perLayerConfig[String(i)] = override;
  }
  const firstShared = s.nLayers - shared;
  const keysAreValues = local.some((isLocal, i) => !isLocal && i < firstShared && !file.tensors.has(`blk.${i}.attn_v.weight`));
  const perLayerDim = meta.optionalNumber(key("embedding_length_per_layer_input")) ?? 0;
  const perLayerTable = file.tensors.get("per_layer_token_embd.weight");
  const experts = meta.optionalNumber(key("expert_count")) ?? 0;
  let partial = 1;
  if (s.ropeFreqs) {
    const rotated = s.ropeFreqs.filter((f) => f === 1).length;
    if (rotated + s.ropeFreqs.filter((f) => f >= 1e29).length !== s.ropeFreqs.length)
      throw new ConfigError(
        `${source}: ${ROPE_FREQS_TENSOR} holds factors other than 1 and 1e30; gemma-ts reads proportional RoPE only`,
        ROPE_FREQS_TENSOR,
      );
    partial = rotated / (globalHeadDim / 2);
  }
  return {
    per_layer_config: perLayerConfig,
    attention_k_eq_v: keysAreValues,
    num_kv_shared_layers: shared,
    use_double_wide_mlp: shared > 0 && s.ffn.slice(firstShared).every((f) => f === 2 * s.ffn[0]!),
    hidden_size_per_layer_input: perLayerDim,
    ...(perLayerTable ? { vocab_size_per_layer_input: perLayerTable.shape[0] } : {}),
    enable_moe_block: experts > 0,
    ...(experts > 0
      ? {
          num_experts: experts,
          top_k_experts: meta.optionalNumber(key("expert_used_count")),
          moe_intermediate_size: meta.optionalNumber(key("expert_feed_forward_length")),
        }
      : {}),
    rope_parameters: {
      sliding_attention: { rope_type: "default", rope_theta: s.localTheta },
      full_attention: s.ropeFreqs
        ? { rope_type: "proportional", rope_theta: s.globalTheta, partial_rotary_factor: partial }
        : { rope_type: "default", rope_theta: s.globalTheta },
    },
  };
}

/** Whether a config can be written as GGUF metadata that llama.cpp reads the same way (null), or why not. */
export function ggufCompatible(config: GemmaConfig): string | null {
  if (config.activation !== "gelu_tanh") return "GGUF Gemma models use the tanh GELU";
  if (config.family === "gemma2" && (config.attnSoftcap === null || config.finalSoftcap === null))
    return "GGUF Gemma 2 models have both soft-caps";
  if (config.family === "gemma2" && config.layerTypes.some((t, i) => t !== defaultLayerTypes(config.nLayers)[i]))
    return "GGUF Gemma 2 models alternate local and global layers, starting local";
  if (config.family === "gemma3" && config.layerTypes.some((t, i) => t !== ((i + 1) % 6 === 0 ? "global" : "local")))
    return "llama.cpp's Gemma 3 makes every 6th layer global";
  if (config.family === "gemma3" && (config.rope.local.type !== "default" || config.rope.global.type === "proportional"))
    return "llama.cpp's Gemma 3 has plain RoPE on local layers and default or linear RoPE on global ones";
  if (config.family === "gemma4" && (config.rope.local.type !== "default" || config.rope.global.type !== "proportional"))
    return "llama.cpp's Gemma 4 has plain RoPE on local layers and proportional RoPE on global ones";
  return null;
}

/** The architecture keys of a config (everything but the vocabulary). */
export function ggufMetadata(c: GemmaConfig): Record<string, GgufValue> {
  const arch: Architecture = c.family;
  const key = (k: string) => `${arch}.${k}`;
  const global = c.layers.find((_, i) => c.layerTypes[i] === "global") ?? c.layers[0]!;
  const kvHeads = c.layers.map((l) => l.nKvHeads);
  const ffn = c.layers.map((l) => l.ffnDim);
  const m: Record<string, GgufValue> = {
    [key("context_length")]: gguv.u32(c.maxPositions),
    [key("embedding_length")]: gguv.u32(c.dModel),
    [key("block_count")]: gguv.u32(c.nLayers),
    [key("feed_forward_length")]: ffn.every((f) => f === ffn[0]) ? gguv.u32(ffn[0]!) : gguv.u32s(ffn),
    [key("attention.head_count")]: gguv.u32(c.nHeads),
    [key("attention.head_count_kv")]: kvHeads.every((h) => h === kvHeads[0]) ? gguv.u32(kvHeads[0]!) : gguv.u32s(kvHeads),
    [key("attention.key_length")]: gguv.u32(global.headDim),
    [key("attention.value_length")]: gguv.u32(global.headDim),
    [key("attention.layer_norm_rms_epsilon")]: gguv.f32(c.rmsNormEps),
    [key("rope.freq_base")]: gguv.f32(c.rope.global.theta),
  };
  if (arch === "gemma2") {
    m[key("attention.sliding_window")] = gguv.u32(c.slidingWindow!);
    m[key("attn_logit_softcapping")] = gguv.f32(c.attnSoftcap!);
    m[key("final_logit_softcapping")] = gguv.f32(c.finalSoftcap!);
  }
  if (arch === "gemma2" || arch === "gemma3") m[QUERY_SCALAR_KEY(arch)] = gguv.f32(c.queryPreAttnScalar);
  if (arch === "gemma3" || arch === "gemma4") {
    m[key("attention.sliding_window")] = gguv.u32(c.slidingWindow!);
    m[key("attention.sliding_window_pattern")] = gguv.bools(c.layerTypes.map((t) => t === "local"));
    m[key("rope.freq_base_swa")] = gguv.f32(c.rope.local.theta);
    if (c.finalSoftcap !== null) m[key("final_logit_softcapping")] = gguv.f32(c.finalSoftcap);
    if (c.attnSoftcap !== null) m[key("attn_logit_softcapping")] = gguv.f32(c.attnSoftcap);
  }
  if (arch === "gemma3" && c.rope.global.type === "linear") {
    m[key("rope.scaling.type")] = gguv.str("linear");
    m[key("rope.scaling.factor")] = gguv.f32(c.rope.global.factor);
  }
  if (arch === "gemma4") {
    m[key("attention.key_length_swa")] = gguv.u32(c.headDim);
    m[key("attention.value_length_swa")] = gguv.u32(c.headDim);
    m[key("attention.shared_kv_layers")] = gguv.u32(c.layers.filter((l, i) => l.kvSource !== i).length);
    m[key("embedding_length_per_layer_input")] = gguv.u32(c.perLayerInput?.dim ?? 0);
    if (c.moe) {
      m[key("expert_count")] = gguv.u32(c.moe.experts);
      m[key("expert_used_count")] = gguv.u32(c.moe.topK);
      m[key("expert_feed_forward_length")] = gguv.u32(c.moe.expertDim);
    }
  }
  return m;
}

/** Gemma 4's rope_freqs tensor for its global layers' proportional RoPE (null for other families). */
export function ropeFreqsTensor(c: GemmaConfig): Float32Array | null {
  if (c.family !== "gemma4" || c.rope.global.type !== "proportional") return null;
  const global = c.layers.find((_, i) => c.layerTypes[i] === "global") ?? c.layers[0]!;
  const pairs = global.headDim / 2;
  const rotated = Math.floor((c.rope.global.partialRotary * global.headDim) / 2);
  return Float32Array.from({ length: pairs }, (_, j) => (j < rotated ? 1 : 1e30));
}
