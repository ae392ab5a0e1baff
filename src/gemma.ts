/**
 * The library's front door: `loadModel(dir)` reads config, tokenizer and weights of a Hugging Face
 * checkpoint folder or GGUF file and returns a model that computes logits, generates and chats.
 */
import { jsKernels } from "./backend/js/index.js";
import { BUNDLED_MODEL } from "./bundled.js";
import type { Kernels } from "./backend/kernels.js";
import { createWasmKernels } from "./backend/wasm/index.js";
import { nodeWasmHost } from "./backend/wasm/node-host.js";
import { GemmaError } from "./errors.js";
import type { PullProgress } from "./hub/pull.js";
import { resolveModelPath } from "./hub/resolve.js";
import type { HubOptions } from "./hub/settings.js";
import type { CausalLM, ModelConfig } from "./model/causal-lm.js";
import type { ForwardOptions } from "./model/gemma/forward.js";
import { assembleGpuModel, assembleModel, type GemmaModel } from "./gemma-model.js";
import { nodeGpu } from "./backend/webgpu/node-gpu.js";
import { assembleForward, type AssembleOptions } from "./model/assemble.js";
import { readLoraAdapter } from "./model/lora-adapter-folder.js";
import { openCheckpoint } from "./model/open-checkpoint.js";
import type { Quantization } from "./model/tensors.js";
import type { TensorSource } from "./weights/checkpoint.js";
import type { GemmaTokenizer } from "./tokenizer/tokenizer.js";

export { GemmaModel, type ChatOptions, type GenerationInput } from "./gemma-model.js";
export { loadConfig, openCheckpoint } from "./model/open-checkpoint.js";

export interface LoadModelOptions extends ForwardOptions, HubOptions {
  /**
   * Compute backend: "wasm" (WebAssembly SIMD matmuls, the default when its module is built), "js"
   * (the TypeScript reference), any Kernels implementation, or "webgpu": the whole forward pass on
   * a GPU through Dawn (the optional package `webgpu`; experimental; Gemma 1-4, not RecurrentGemma).
   */
  kernels?: Kernels | "js" | "wasm" | "webgpu";
  /** Called as weights are read: bytes so far and in total. */
  onProgress?: (loadedBytes: number, totalBytes: number) => void;
  /** Diagnostic messages (ignored tensors and the like). */
  onDebug?: (message: string) => void;
  /**
   * Quantize weight matrices on load to llama.cpp's blocks: "q8_0" (about half of bf16), "q4_0"
   * (about a quarter); "none" (default) keeps their stored width.
   */
  quant?: Quantization;
  /** A PEFT LoRA adapter folder merged into the weights as they load. */
  lora?: string;
  /** Load even when the file holds tensors the config does not use (default false: an error naming them). */
  allowUnusedTensors?: boolean;
  /** Relaxed SIMD int8 dot products in the wasm backend where the engine has them (default true; false: plain SIMD). */
  relaxedSimd?: boolean;
  /** Threads for the wasm backend's matmuls (default: the number of cores). */
  threads?: number;
  /** Progress of a Hub download, when the model is a repo id not yet in the cache. */
  onDownloadProgress?: (progress: PullProgress) => void;
}

/** Loads the weights a config needs from a tensor source and builds that family's forward pass. */
export async function buildForward(
  source: TensorSource,
  config: ModelConfig,
  options: LoadModelOptions = {},
): Promise<{ forwardPass: CausalLM; weightBytes: number }> {
  const kernels = await resolveKernels(options.kernels, options);
  options.onDebug?.(`kernels: ${kernels.name}`);
  return assembleForward(source, config, kernels, await assembleOptions(options));
}

async function assembleOptions(options: LoadModelOptions): Promise<AssembleOptions> {
  const { kernels: _kernels, lora, ...rest } = options;
  return lora ? { ...rest, lora: await readLoraAdapter(lora) } : rest;
}

/** A Kernels object for the option; "wasm" (and the default) fall back to "js" when the module is unavailable. */
export async function resolveKernels(
  choice: LoadModelOptions["kernels"],
  options: Pick<LoadModelOptions, "onDebug" | "threads" | "relaxedSimd"> = {},
): Promise<Kernels> {
  const { onDebug, threads, relaxedSimd } = options;
  if (typeof choice === "object") return choice;
  if (choice === "js") return jsKernels;
  if (choice === "webgpu")
    throw new GemmaError("the webgpu backend runs whole models only (loadModel); this path takes js or wasm kernels");
  try {
    return await createWasmKernels({
      host: nodeWasmHost,
      ...(threads === undefined ? {} : { threads }),
      ...(relaxedSimd === undefined ? {} : { relaxedSimd }),
    });
  } catch (e) {
    if (choice === "wasm") throw new GemmaError(`the WebAssembly backend is unavailable: ${(e as Error).message}`);
    onDebug?.(`using the TypeScript kernels: ${(e as Error).message}`);
    return jsKernels;
  }
}

/**
 * Loads a model: a Hugging Face folder with config.json, model.safetensors (or shards with
 * model.safetensors.index.json) and, optionally, tokenizer.json + tokenizer_config.json; a GGUF
 * file (architectures gemma2 and gemma, tokenizer from its metadata); or a Hub repo id
 * (`google/gemma-2-2b-it`, `org/name@revision`), taken from the HF cache or downloaded. Without
 * one, the demo model bundled with the package (`BUNDLED_MODEL`).
 */
export async function loadModel(model: string = BUNDLED_MODEL, options: LoadModelOptions = {}): Promise<GemmaModel> {
  if (typeof model !== "string" || model === "")
    throw new GemmaError(`loadModel needs a folder, a .gguf file or a Hub repo id; got ${model === "" ? "an empty string" : typeof model}`);
  const { endpoint, token, cacheDir, offline, onDownloadProgress } = options;
  const hub = { endpoint, token, cacheDir, offline, onProgress: onDownloadProgress };
  const dir = await resolveModelPath(model, Object.fromEntries(Object.entries(hub).filter(([, v]) => v !== undefined)));
  const { checkpoint, config, tokenizer } = await openCheckpoint(dir);
  try {
    if (options.kernels === "webgpu") return await loadOnWebGpu(checkpoint, config, tokenizer, options);
    const kernels = await resolveKernels(options.kernels, options);
    options.onDebug?.(`kernels: ${kernels.name}`);
    return await assembleModel(checkpoint, config, tokenizer, kernels, await assembleOptions(options));
  } finally {
    await checkpoint.close();
  }
}

/** The model on Dawn's WebGPU (any adapter it finds: a GPU, or Mesa's lavapipe on the CPU). */
async function loadOnWebGpu(
  checkpoint: TensorSource,
  config: ModelConfig,
  tokenizer: GemmaTokenizer | null,
  options: LoadModelOptions,
): Promise<GemmaModel> {
  if (options.threads !== undefined || options.relaxedSimd !== undefined)
    throw new GemmaError("threads and relaxedSimd set the wasm backend's kernels; the webgpu backend takes neither");
  const adapter = await (await nodeGpu()).requestAdapter({ powerPreference: "high-performance" });
  if (!adapter)
    throw new GemmaError("the webgpu backend found no WebGPU adapter (Dawn needs a Vulkan driver: a GPU's, or Mesa's lavapipe)");
  const loaded = await assembleGpuModel(checkpoint, config, tokenizer, adapter, await assembleOptions(options));
  if (!loaded.model) throw new GemmaError(`this model cannot run on the webgpu backend: ${loaded.reason}; use --backend wasm`);
  options.onDebug?.(`webgpu adapter: ${loaded.adapter}`);
  return loaded.model;
}
