/**
 * Building a model family's forward pass from any tensor source: its weights loaded (validated,
 * quantized, LoRA merged) onto the kernels, and the family's `CausalLM` around them.
 */
import type { Kernels, Weight } from "../backend/kernels.js";
import { CheckpointError } from "../errors.js";
import type { TensorSource } from "../weights/checkpoint.js";
import type { CausalLM, ModelConfig } from "./causal-lm.js";
import { GemmaForward, type ForwardOptions } from "./gemma/forward.js";
import { loadWeights, type GemmaWeights } from "./gemma/weights.js";
import { textModelTensors } from "./gemma/text-tensors.js";
import type { LoraDelta } from "./lora-adapter.js";
import { RecurrentGemmaForward } from "./recurrent-gemma/forward.js";
import { loadRecurrentWeights, type RecurrentGemmaWeights } from "./recurrent-gemma/weights.js";
import { heldBytes, type LoadWeightsOptions } from "./tensors.js";

export interface AssembleOptions
  extends ForwardOptions,
    Omit<LoadWeightsOptions, "onMatrix" | "quantizeMatrix" | "receiveMatrix" | "lora"> {
  /** LoRA updates to merge (read by the platform's adapter reader). */
  lora?: ReadonlyMap<string, LoraDelta>;
}

/** Loads the weights a config needs from a tensor source onto the kernels and builds that family's forward pass. */
export async function assembleForward(
  source: TensorSource,
  config: ModelConfig,
  kernels: Kernels,
  options: AssembleOptions = {},
): Promise<{ forwardPass: CausalLM; weightBytes: number }> {
  if (options.lora && config.family === "recurrent_gemma")
    throw new CheckpointError(`${source.dir}: LoRA adapters are supported for Gemma models, not RecurrentGemma`);
  const loadOptions = {
    ...options,
    onMatrix: (w: Weight) => kernels.adopt?.([w]),
    ...(kernels.quantize ? { quantizeMatrix: kernels.quantize.bind(kernels) } : {}),
    ...(kernels.receive ? { receiveMatrix: kernels.receive.bind(kernels) } : {}),
  };
  const weights =
    config.family === "recurrent_gemma"
      ? await loadRecurrentWeights(source, config, loadOptions)
      : await loadWeights(textModelTensors(source), config, loadOptions);
  const weightBytes = heldBytes(weights);
  await kernels.ready?.();
  const forwardPass =
    config.family === "recurrent_gemma"
      ? new RecurrentGemmaForward(config, weights as RecurrentGemmaWeights, kernels)
      : new GemmaForward(config, weights as GemmaWeights, kernels, options);
  return { forwardPass, weightBytes };
}
