/**
 * The tensors a Gemma config needs (Hugging Face names, GEMMA2.md §3, docs/spec/GEMMA3-4.md §2),
 * their parameter counts, and loading them.
 */
import type { Weight } from "../../backend/kernels.js";
import type { GemmaConfig } from "./config.js";
import type { TensorSource } from "../../weights/checkpoint.js";
import { checkLayerCount, tensorReader, validateTensors, type LoadWeightsOptions, type ValidateOptions } from "../tensors.js";

export interface LayerWeights {
  /** RMSNorm gains (offset + stored weight, GemmaConfig.normGainOffset). */
  inputNorm: Float32Array;
  /** Gemma 2+: norm of the attention output before the residual add. */
  postAttentionNorm: Float32Array | null;
  preFeedforwardNorm: Float32Array;
  /** Gemma 2+: norm of the MLP output before the residual add. */
  postFeedforwardNorm: Float32Array | null;
  q: Weight;
  /** null on a layer that reads another layer's keys and values (Gemma 4 KV sharing). */
  k: Weight | null;
  /** null also where the values are the keys (Gemma 4 attention_k_eq_v). */
  v: Weight | null;
  o: Weight;
  /** Gemma 3/4 QK-norm gains over head_dim (kNorm null where the layer computes no keys). */
  qNorm: Float32Array | null;
  kNorm: Float32Array | null;
  gate: Weight;
  up: Weight;
  down: Weight;
  /** Gemma 4 per-layer input: gate [dim, dModel], projection [dModel, dim], post-norm. */
  perLayer: { gate: Weight; projection: Weight; norm: Float32Array } | null;
  moe: MoeWeights | null;
  /** Gemma 4 layer_scalar (1 elsewhere). */
  scalar: number;
}

export interface MoeWeights {
  /** [experts, dModel]: router logits of the (unit-gain normed, scaled) residual. */
  router: Weight;
  routerScale: Float32Array;
  perExpertScale: Float32Array;
  experts: { gate: Weight; up: Weight; down: Weight }[];
  preNorm: Float32Array;
  /** Norms of the dense MLP's output and of the experts' output before they are summed. */
  postDenseNorm: Float32Array;
  postExpertsNorm: Float32Array;
}

export interface GemmaWeights {
  /** [vocab, dModel]: input embedding and (tied) output head. */
  embedding: Weight;
  /** Gemma 4 per-layer inputs: table [vocab, nLayers·dim], projection [nLayers·dim, dModel], norm [dim]. */
  perLayerInput: { embedding: Weight; projection: Weight; norm: Float32Array } | null;
  layers: LayerWeights[];
  finalNorm: Float32Array;
}

const computesKeys = (c: GemmaConfig, i: number) => c.layers[i]!.kvSource === i;

/** Every tensor name the config needs, with its expected shape. */
export function expectedTensors(c: GemmaConfig): Map<string, number[]> {
  const d = c.dModel;
  const shapes = new Map<string, number[]>([["model.embed_tokens.weight", [c.vocabSize, d]]]);
  if (c.perLayerInput) {
    const packed = c.nLayers * c.perLayerInput.dim;
    shapes.set("model.embed_tokens_per_layer.weight", [c.perLayerInput.vocabSize, packed]);
    shapes.set("model.per_layer_model_projection.weight", [packed, d]);
    shapes.set("model.per_layer_projection_norm.weight", [c.perLayerInput.dim]);
  }
  for (let i = 0; i < c.nLayers; i++) {
    const p = `model.layers.${i}.`;
    const { headDim, nKvHeads, valuesFromKeys, ffnDim } = c.layers[i]!;
    shapes.set(`${p}input_layernorm.weight`, [d]);
    shapes.set(`${p}post_attention_layernorm.weight`, [d]);
    if (c.sandwichNorms) {
      shapes.set(`${p}pre_feedforward_layernorm.weight`, [d]);
      shapes.set(`${p}post_feedforward_layernorm.weight`, [d]);
    }
    shapes.set(`${p}self_attn.q_proj.weight`, [c.nHeads * headDim, d]);
    if (c.qkNorm) shapes.set(`${p}self_attn.q_norm.weight`, [headDim]);
    if (computesKeys(c, i)) {
      shapes.set(`${p}self_attn.k_proj.weight`, [nKvHeads * headDim, d]);
      if (!valuesFromKeys) shapes.set(`${p}self_attn.v_proj.weight`, [nKvHeads * headDim, d]);
      if (c.qkNorm) shapes.set(`${p}self_attn.k_norm.weight`, [headDim]);
    }
    shapes.set(`${p}self_attn.o_proj.weight`, [d, c.nHeads * headDim]);
    shapes.set(`${p}mlp.gate_proj.weight`, [ffnDim, d]);
    shapes.set(`${p}mlp.up_proj.weight`, [ffnDim, d]);
    shapes.set(`${p}mlp.down_proj.weight`, [d, ffnDim]);
    if (c.perLayerInput) {
      shapes.set(`${p}per_layer_input_gate.weight`, [c.perLayerInput.dim, d]);
      shapes.set(`${p}per_layer_projection.weight`, [d, c.perLayerInput.dim]);
      shapes.set(`${p}post_per_layer_input_norm.weight`, [d]);
    }
    if (c.moe) {
      const { experts, expertDim } = c.moe;
      shapes.set(`${p}router.proj.weight`, [experts, d]);
      shapes.set(`${p}router.scale`, [d]);
      shapes.set(`${p}router.per_expert_scale`, [experts]);
      shapes.set(`${p}experts.gate_up_proj`, [experts, 2 * expertDim, d]);
      shapes.set(`${p}experts.down_proj`, [experts, d, expertDim]);
      shapes.set(`${p}pre_feedforward_layernorm_2.weight`, [d]);
      shapes.set(`${p}post_feedforward_layernorm_1.weight`, [d]);
      shapes.set(`${p}post_feedforward_layernorm_2.weight`, [d]);
    }
    if (c.layerScalars) shapes.set(`${p}layer_scalar`, [1]);
  }
  shapes.set("model.norm.weight", [d]);
  return shapes;
}

/** Tensors a checkpoint may hold that this config rightly skips: keys/values of KV-sharing layers (transformers ignores them too). */
export function skippedTensors(c: GemmaConfig): Set<string> {
  const skipped = new Set<string>();
  for (let i = 0; i < c.nLayers; i++) {
    if (computesKeys(c, i)) continue;
    for (const t of ["k_proj.weight", "v_proj.weight", "k_norm.weight", "v_norm.weight"]) skipped.add(`model.layers.${i}.self_attn.${t}`);
  }
  return skipped;
}

/** Parameter count of the model a config describes (tied embeddings counted once). */
export function parameterCount(c: GemmaConfig): number {
  let total = 0;
  for (const shape of expectedTensors(c).values()) total += shape.reduce((a, b) => a * b, 1);
  return total;
}

/** Parameters a token uses: all but the experts it is not routed to (equals parameterCount without MoE). */
export function activeParameterCount(c: GemmaConfig): number {
  if (!c.moe) return parameterCount(c);
  const perExpert = 3 * c.moe.expertDim * c.dModel;
  return parameterCount(c) - c.nLayers * (c.moe.experts - c.moe.topK) * perExpert;
}

/** Checks a Gemma checkpoint against its config; returns the bytes to load. */
export function validateCheckpoint(ckpt: TensorSource, config: GemmaConfig, options: ValidateOptions = {}): number {
  checkLayerCount(ckpt, config.nLayers, options);
  return validateTensors(ckpt, expectedTensors(config), config.family, { ...options, skipped: skippedTensors(config) });
}

export async function loadWeights(ckpt: TensorSource, config: GemmaConfig, options: LoadWeightsOptions = {}): Promise<GemmaWeights> {
  const totalBytes = validateCheckpoint(ckpt, config, options);
  const { matrix, stackedMatrices, vector, gain: readGain } = tensorReader(ckpt, totalBytes, options);
  const gain = (name: string) => readGain(name, config.normGainOffset);
  const optional = <T>(present: boolean, load: () => Promise<T>) => (present ? load() : Promise.resolve(null));

  const embedding = await matrix("model.embed_tokens.weight");
  const perLayerInput = await optional(config.perLayerInput !== null, async () => ({
    embedding: await matrix("model.embed_tokens_per_layer.weight"),
    projection: await matrix("model.per_layer_model_projection.weight"),
    norm: await gain("model.per_layer_projection_norm.weight"),
  }));
  const layers: LayerWeights[] = [];
  for (let i = 0; i < config.nLayers; i++) {
    const p = `model.layers.${i}.`;
    const shape = config.layers[i]!;
    const ownKeys = computesKeys(config, i);
    // Gemma 1's post_attention_layernorm is its pre-MLP norm (§4); Gemma 2's is a post-norm.
    const secondNorm = await gain(`${p}post_attention_layernorm.weight`);
    layers.push({
      inputNorm: await gain(`${p}input_layernorm.weight`),
      postAttentionNorm: config.sandwichNorms ? secondNorm : null,
      preFeedforwardNorm: config.sandwichNorms ? await gain(`${p}pre_feedforward_layernorm.weight`) : secondNorm,
      postFeedforwardNorm: config.sandwichNorms ? await gain(`${p}post_feedforward_layernorm.weight`) : null,
      q: await matrix(`${p}self_attn.q_proj.weight`),
      k: await optional(ownKeys, () => matrix(`${p}self_attn.k_proj.weight`)),
      v: await optional(ownKeys && !shape.valuesFromKeys, () => matrix(`${p}self_attn.v_proj.weight`)),
      o: await matrix(`${p}self_attn.o_proj.weight`),
      qNorm: await optional(config.qkNorm, () => gain(`${p}self_attn.q_norm.weight`)),
      kNorm: await optional(config.qkNorm && ownKeys, () => gain(`${p}self_attn.k_norm.weight`)),
      gate: await matrix(`${p}mlp.gate_proj.weight`),
      up: await matrix(`${p}mlp.up_proj.weight`),
      down: await matrix(`${p}mlp.down_proj.weight`),
      perLayer: await optional(config.perLayerInput !== null, async () => ({
        gate: await matrix(`${p}per_layer_input_gate.weight`),
        projection: await matrix(`${p}per_layer_projection.weight`),
        norm: await gain(`${p}post_per_layer_input_norm.weight`),
      })),
      moe: await optional(config.moe !== null, async () => {
        const expertDim = config.moe!.expertDim;
        const gateUp = await stackedMatrices(`${p}experts.gate_up_proj`, [expertDim, expertDim]);
        const down = await stackedMatrices(`${p}experts.down_proj`, [config.dModel]);
        return {
          router: await matrix(`${p}router.proj.weight`),
          routerScale: await vector(`${p}router.scale`),
          perExpertScale: await vector(`${p}router.per_expert_scale`),
          experts: gateUp.map(([gate, up], e) => ({ gate: gate!, up: up!, down: down[e]![0]! })),
          preNorm: await gain(`${p}pre_feedforward_layernorm_2.weight`),
          postDenseNorm: await gain(`${p}post_feedforward_layernorm_1.weight`),
          postExpertsNorm: await gain(`${p}post_feedforward_layernorm_2.weight`),
        };
      }),
      scalar: config.layerScalars ? (await vector(`${p}layer_scalar`))[0]! : 1,
    });
  }
  return { embedding, perLayerInput, layers, finalNorm: await gain("model.norm.weight") };
}
