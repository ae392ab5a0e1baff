/** RecurrentGemma tensors (Hugging Face names, RECURRENTGEMMA.md §7): expected shapes and loading. */
import type { Weight } from "../../backend/kernels.js";
import type { TensorSource } from "../../weights/checkpoint.js";
import { checkLayerCount, tensorReader, validateTensors, type LoadWeightsOptions } from "../tensors.js";
import type { RecurrentGemmaConfig } from "./config.js";

export interface RecurrentWeights {
  kind: "recurrent";
  linearX: Weight;
  linearXBias: Float32Array;
  linearY: Weight;
  linearYBias: Float32Array;
  linearOut: Weight;
  linearOutBias: Float32Array;
  /** [width, lruWidth]: tap k multiplies the input width-1-k steps back. */
  convWeight: Float32Array;
  convBias: Float32Array;
  inputGate: Float32Array;
  inputGateBias: Float32Array;
  recurrentGate: Float32Array;
  recurrentGateBias: Float32Array;
  /** softplus(Λ), precomputed: log a = -8 · σ(gate) · softplusLambda. */
  softplusLambda: Float32Array;
}

export interface AttentionWeights {
  kind: "attention";
  q: Weight;
  k: Weight;
  v: Weight;
  o: Weight;
  oBias: Float32Array;
}

export interface ResidualBlockWeights {
  temporalNorm: Float32Array;
  channelNorm: Float32Array;
  temporal: RecurrentWeights | AttentionWeights;
  gate: Weight;
  gateBias: Float32Array;
  up: Weight;
  upBias: Float32Array;
  down: Weight;
  downBias: Float32Array;
}

export interface RecurrentGemmaWeights {
  embedding: Weight;
  blocks: ResidualBlockWeights[];
  finalNorm: Float32Array;
}

export function expectedRecurrentTensors(c: RecurrentGemmaConfig): Map<string, number[]> {
  const shapes = new Map<string, number[]>([["model.embed_tokens.weight", [c.vocabSize, c.dModel]]]);
  const bw = c.lruWidth / c.nHeads;
  c.blockTypes.forEach((kind, i) => {
    const p = `model.layers.${i}.`;
    shapes.set(`${p}temporal_pre_norm.weight`, [c.dModel]);
    shapes.set(`${p}channel_pre_norm.weight`, [c.dModel]);
    shapes.set(`${p}mlp_block.gate_proj.weight`, [c.ffnDim, c.dModel]);
    shapes.set(`${p}mlp_block.gate_proj.bias`, [c.ffnDim]);
    shapes.set(`${p}mlp_block.up_proj.weight`, [c.ffnDim, c.dModel]);
    shapes.set(`${p}mlp_block.up_proj.bias`, [c.ffnDim]);
    shapes.set(`${p}mlp_block.down_proj.weight`, [c.dModel, c.ffnDim]);
    shapes.set(`${p}mlp_block.down_proj.bias`, [c.dModel]);
    const t = `${p}temporal_block.`;
    if (kind === "recurrent") {
      for (const name of ["linear_x", "linear_y"]) {
        shapes.set(`${t}${name}.weight`, [c.lruWidth, c.dModel]);
        shapes.set(`${t}${name}.bias`, [c.lruWidth]);
      }
      shapes.set(`${t}linear_out.weight`, [c.dModel, c.lruWidth]);
      shapes.set(`${t}linear_out.bias`, [c.dModel]);
      shapes.set(`${t}conv_1d.weight`, [c.lruWidth, 1, c.convWidth]);
      shapes.set(`${t}conv_1d.bias`, [c.lruWidth]);
      shapes.set(`${t}rg_lru.recurrent_param`, [c.lruWidth]);
      for (const gate of ["input_gate", "recurrent_gate"]) {
        shapes.set(`${t}rg_lru.${gate}_weight`, [c.nHeads, bw, bw]);
        shapes.set(`${t}rg_lru.${gate}_bias`, [c.nHeads, bw]);
      }
    } else {
      shapes.set(`${t}q_proj.weight`, [c.nHeads * c.headDim, c.dModel]);
      shapes.set(`${t}k_proj.weight`, [c.nKvHeads * c.headDim, c.dModel]);
      shapes.set(`${t}v_proj.weight`, [c.nKvHeads * c.headDim, c.dModel]);
      shapes.set(`${t}o_proj.weight`, [c.dModel, c.nHeads * c.headDim]);
      shapes.set(`${t}o_proj.bias`, [c.dModel]);
    }
  });
  shapes.set("model.final_norm.weight", [c.dModel]);
  return shapes;
}

export async function loadRecurrentWeights(
  ckpt: TensorSource,
  config: RecurrentGemmaConfig,
  options: LoadWeightsOptions = {},
): Promise<RecurrentGemmaWeights> {
  checkLayerCount(ckpt, config.nLayers, options);
  const totalBytes = validateTensors(ckpt, expectedRecurrentTensors(config), config.family, options);
  const { matrix, vector, gain } = tensorReader(ckpt, totalBytes, options);
  const blocks: ResidualBlockWeights[] = [];
  for (const [i, kind] of config.blockTypes.entries()) {
    const p = `model.layers.${i}.`;
    const t = `${p}temporal_block.`;
    let temporal: RecurrentWeights | AttentionWeights;
    if (kind === "recurrent") {
      // HF conv weight [R, 1, K] with hf[c, 0, k] = w[k, c]: transpose to tap-major [K, R].
      const hfConv = await vector(`${t}conv_1d.weight`);
      const convWeight = new Float32Array(hfConv.length);
      for (let c = 0; c < config.lruWidth; c++)
        for (let k = 0; k < config.convWidth; k++) convWeight[k * config.lruWidth + c] = hfConv[c * config.convWidth + k]!;
      const lambda = await vector(`${t}rg_lru.recurrent_param`);
      temporal = {
        kind: "recurrent",
        linearX: await matrix(`${t}linear_x.weight`),
        linearXBias: await vector(`${t}linear_x.bias`),
        linearY: await matrix(`${t}linear_y.weight`),
        linearYBias: await vector(`${t}linear_y.bias`),
        linearOut: await matrix(`${t}linear_out.weight`),
        linearOutBias: await vector(`${t}linear_out.bias`),
        convWeight,
        convBias: await vector(`${t}conv_1d.bias`),
        inputGate: await vector(`${t}rg_lru.input_gate_weight`),
        inputGateBias: await vector(`${t}rg_lru.input_gate_bias`),
        recurrentGate: await vector(`${t}rg_lru.recurrent_gate_weight`),
        recurrentGateBias: await vector(`${t}rg_lru.recurrent_gate_bias`),
        // softplus(x) = log(1 + e^x), computed stably for large x.
        softplusLambda: lambda.map((x) => (x > 20 ? x : Math.log1p(Math.exp(x)))),
      };
    } else {
      temporal = {
        kind: "attention",
        q: await matrix(`${t}q_proj.weight`),
        k: await matrix(`${t}k_proj.weight`),
        v: await matrix(`${t}v_proj.weight`),
        o: await matrix(`${t}o_proj.weight`),
        oBias: await vector(`${t}o_proj.bias`),
      };
    }
    blocks.push({
      temporalNorm: await gain(`${p}temporal_pre_norm.weight`),
      channelNorm: await gain(`${p}channel_pre_norm.weight`),
      temporal,
      gate: await matrix(`${p}mlp_block.gate_proj.weight`),
      gateBias: await vector(`${p}mlp_block.gate_proj.bias`),
      up: await matrix(`${p}mlp_block.up_proj.weight`),
      upBias: await vector(`${p}mlp_block.up_proj.bias`),
      down: await matrix(`${p}mlp_block.down_proj.weight`),
      downBias: await vector(`${p}mlp_block.down_proj.bias`),
    });
  }
  return { embedding: await matrix("model.embed_tokens.weight"), blocks, finalNorm: await gain("model.final_norm.weight") };
}
