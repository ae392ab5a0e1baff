/**
 * A model on WebGPU in the browser: a hardware adapter (or a software one when asked for by name)
 * and the model assembled on its device (gemma-model.ts assembleGpuModel). A refusal carries its
 * reason so the caller falls back to WebAssembly.
 */
import { assembleGpuModel, type GpuModelLoad } from "../gemma-model.js";
import type { AssembleOptions } from "../model/assemble.js";
import type { GpuForwardOptions } from "../model/gemma/gpu-forward.js";
import { openModelFiles } from "./load.js";
import type { ModelFiles } from "./model-files.js";

export type WebGpuLoad = GpuModelLoad;

/**
 * `softwareAdapter`: also run on a software adapter (SwiftShader on a machine without a GPU), far
 * slower than WebAssembly: only when WebGPU is asked for by name.
 */
export async function loadModelOnWebGpu(
  files: ModelFiles,
  gpu: GPU,
  options: AssembleOptions & GpuForwardOptions & { softwareAdapter?: boolean } = {},
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
    return await assembleGpuModel(checkpoint, config, tokenizer, adapter, assemble);
  } finally {
    await checkpoint.close();
  }
}
