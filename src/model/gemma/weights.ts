/** The tensors a Gemma 1 / Gemma 2 config needs (Hugging Face names, GEMMA2.md §3), and loading them. */
import type { Weight } from "../../backend/kernels.js";
import type { GemmaConfig } from "./config.js";
import type { TensorSource } from "../../weights/checkpoint.js";
import { checkLayerCount, tensorReader, validateTensors, type LoadWeightsOptions, type ValidateOptions } from "../tensors.js";

export interface LayerWeights {
  /** Norm gains are stored as 1 + w (RMSNorm weights are offsets from 1, §2). */
  inputNorm: Float32Array;
  /** Gemma 2 only: norm of the attention output before the residual add. */
  postAttentionNorm: Float32Array | null;
  preFeedforwardNorm: Float32Array;
  /** Gemma 2 only: norm of the MLP output before the residual add. */
  postFeedforwardNorm: Float32Array | null;
  q: Weight;
  k: Weight;
  v: Weight;
  o: Weight;
  gate: Weight;
  up: Weight;
  down: Weight;
}

export interface GemmaWeights {
  /** [vocab, dModel]: input embedding and (tied) output head. */
  embedding: Weight;
  layers: LayerWeights[];
  finalNorm: Float32Array;
}

/** Every tensor name the config needs, with its expected shape. */
export function expectedTensors(c: GemmaConfig): Map<string, number[]> {
  const shapes = new Map<string, number[]>([["model.embed_tokens.weight", [c.vocabSize, c.dModel]]]);
  for (let i = 0; i < c.nLayers; i++) {
    const p = `model.layers.${i}.`;
    shapes.set(`${p}input_layernorm.weight`, [c.dModel]);
    shapes.set(`${p}post_attention_layernorm.weight`, [c.dModel]);
    if (c.sandwichNorms) {
      shapes.set(`${p}pre_feedforward_layernorm.weight`, [c.dModel]);
      shapes.set(`${p}post_feedforward_layernorm.weight`, [c.dModel]);
    }
    shapes.set(`${p}self_attn.q_proj.weight`, [c.nHeads * c.headDim, c.dModel]);
    shapes.set(`${p}self_attn.k_proj.weight`, [c.nKvHeads * c.headDim, c.dModel]);
    shapes.set(`${p}self_attn.v_proj.weight`, [c.nKvHeads * c.headDim, c.dModel]);
    shapes.set(`${p}self_attn.o_proj.weight`, [c.dModel, c.nHeads * c.headDim]);
    shapes.set(`${p}mlp.gate_proj.weight`, [c.ffnDim, c.dModel]);
    shapes.set(`${p}mlp.up_proj.weight`, [c.ffnDim, c.dModel]);
    shapes.set(`${p}mlp.down_proj.weight`, [c.dModel, c.ffnDim]);
  }
  shapes.set("model.norm.weight", [c.dModel]);
  return shapes;
}

/** Checks a Gemma checkpoint against its config; returns the bytes to load. */
export function validateCheckpoint(ckpt: TensorSource, config: GemmaConfig, options: ValidateOptions = {}): number {
  checkLayerCount(ckpt, config.nLayers, options);
  return validateTensors(ckpt, expectedTensors(config), config.family, options);
}

export async function loadWeights(ckpt: TensorSource, config: GemmaConfig, options: LoadWeightsOptions = {}): Promise<GemmaWeights> {
  const totalBytes = validateCheckpoint(ckpt, config, options);
  const { matrix, gain } = tensorReader(ckpt, totalBytes, options);

  const embedding = await matrix("model.embed_tokens.weight");
  const layers: LayerWeights[] = [];
  for (let i = 0; i < config.nLayers; i++) {
    const p = `model.layers.${i}.`;
    // Gemma 1's post_attention_layernorm is its pre-MLP norm (§4); Gemma 2's is a post-norm.
    const secondNorm = await gain(`${p}post_attention_layernorm.weight`);
    layers.push({
      inputNorm: await gain(`${p}input_layernorm.weight`),
      postAttentionNorm: config.sandwichNorms ? secondNorm : null,
      preFeedforwardNorm: config.sandwichNorms ? await gain(`${p}pre_feedforward_layernorm.weight`) : secondNorm,
      postFeedforwardNorm: config.sandwichNorms ? await gain(`${p}post_feedforward_layernorm.weight`) : null,
      q: await matrix(`${p}self_attn.q_proj.weight`),
      k: await matrix(`${p}self_attn.k_proj.weight`),
      v: await matrix(`${p}self_attn.v_proj.weight`),
      o: await matrix(`${p}self_attn.o_proj.weight`),
      gate: await matrix(`${p}mlp.gate_proj.weight`),
      up: await matrix(`${p}mlp.up_proj.weight`),
      down: await matrix(`${p}mlp.down_proj.weight`),
    });
  }
  return { embedding, layers, finalNorm: await gain("model.norm.weight") };
}
