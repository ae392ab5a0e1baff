/**
 * A model on WebGPU in the browser: the files load with the TypeScript kernels (weights in their
 * stored layout, which the GPU shaders read as they are), then the forward pass moves to the
 * device (src/model/gemma/gpu-forward.ts). Null when there is no adapter or the model cannot run
 * there, so the caller falls back to WebAssembly.
 */
import { jsKernels } from "../backend/js/index.js";
import { GemmaModel } from "../gemma-model.js";
import type { AssembleOptions } from "../model/assemble.js";
import { GemmaForward } from "../model/gemma/forward.js";
import { GpuGemmaForward, gpuUnsupported } from "../model/gemma/gpu-forward.js";
import { loadModelFromFiles } from "./load.js";
import type { ModelFiles } from "./model-files.js";

export interface WebGpuModel {
  model: GemmaModel;
  /** The adapter's description, for the model facts. */
  adapter: string;
}

/** The model on the first WebGPU adapter, or null (no adapter, or a model the GPU forward does not run yet) with the reason. */
export async function loadModelOnWebGpu(
  files: ModelFiles,
  gpu: GPU,
  options: AssembleOptions = {},
): Promise<WebGpuModel | { model: null; reason: string }> {
  const adapter = await gpu.requestAdapter();
  if (!adapter) return { model: null, reason: "no WebGPU adapter" };
  const device = await adapter.requestDevice({
    requiredLimits: {
      maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize,
      maxBufferSize: adapter.limits.maxBufferSize,
    },
  });
  const cpu = await loadModelFromFiles(files, jsKernels, options);
  const pass = cpu.forwardPass;
  if (!(pass instanceof GemmaForward)) return { model: null, reason: "RecurrentGemma is not on WebGPU yet" };
  const unsupported = gpuUnsupported(pass.config);
  if (unsupported) return { model: null, reason: unsupported };
  const gpuPass = new GpuGemmaForward(device, pass.config, pass.weights);
  const info = adapter.info;
  return {
    model: new GemmaModel(cpu.config, cpu.tokenizer, gpuPass, cpu.weightBytes),
    adapter: [info.vendor, info.architecture, info.description].filter(Boolean).join(" ") || "WebGPU",
  };
}
