/**
 * A model on WebGPU in the browser: the config is checked first (what the GPU forward does not run
 * yet is refused before any weight is read), the weights load with the TypeScript kernels (their
 * stored layout, which the shaders read as it is), and the forward pass moves to the device
 * (src/model/gemma/gpu-forward.ts). A refusal carries its reason so the caller falls back to
 * WebAssembly.
 */
import { jsKernels } from "../backend/js/index.js";
import { assembleModel, GemmaModel } from "../gemma-model.js";
import type { AssembleOptions } from "../model/assemble.js";
import type { GemmaForward } from "../model/gemma/forward.js";
import { GpuGemmaForward, gpuUnsupported } from "../model/gemma/gpu-forward.js";
import { openModelFiles } from "./load.js";
import type { ModelFiles } from "./model-files.js";

export type WebGpuLoad = { model: GemmaModel; adapter: string } | { model: null; reason: string };

/**
 * `softwareAdapter`: also run on a software adapter (SwiftShader on a machine without a GPU), far
 * slower than WebAssembly: only when WebGPU is asked for by name.
 */
export async function loadModelOnWebGpu(
  files: ModelFiles,
  gpu: GPU,
  options: AssembleOptions & { softwareAdapter?: boolean } = {},
): Promise<WebGpuLoad> {
  const { softwareAdapter = false, ...assemble } = options;
  const adapter = await gpu.requestAdapter({ powerPreference: "high-performance" });
  if (!adapter) return { model: null, reason: "no WebGPU adapter" };
  if (adapter.info.isFallbackAdapter && !softwareAdapter)
    return {
      model: null,
      reason: `only a software WebGPU adapter (${adapter.info.architecture || adapter.info.vendor}), slower than WebAssembly`,
    };
  const { checkpoint, config, tokenizer } = await openModelFiles(files);
  try {
    if (config.family === "recurrent_gemma") return { model: null, reason: "RecurrentGemma is not on WebGPU yet" };
    const unsupported = gpuUnsupported(config);
    if (unsupported) return { model: null, reason: unsupported };
    const device = await adapter.requestDevice({
      requiredLimits: {
        maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize,
        maxBufferSize: adapter.limits.maxBufferSize,
      },
    });
    const cpu = await assembleModel(checkpoint, config, tokenizer, jsKernels, assemble);
    const pass = cpu.forwardPass as GemmaForward;
    const gpuPass = new GpuGemmaForward(device, config, pass.weights);
    const info = adapter.info;
    const name = [info.vendor, info.architecture, info.description].filter(Boolean).join(" ") || "WebGPU adapter";
    return { model: new GemmaModel(config, tokenizer, gpuPass, cpu.weightBytes), adapter: name };
  } finally {
    await checkpoint.close();
  }
}
