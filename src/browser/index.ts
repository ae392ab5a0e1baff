/**
 * gemma-ts for browsers: the same models, tokenizers and generation as in Node, reading files
 * through Blobs, range requests and the Origin Private File System, with Web Worker kernels.
 * Pages usually run the model in runtime-worker.js and talk to it with GemmaWorkerClient.
 */
export { GemmaModel, assembleModel, type ChatOptions, type GenerationInput, type AssembleOptions } from "../gemma-model.js";
export { PRESETS, configFromHf, type GemmaConfig } from "../model/gemma/config.js";
export { parseModelConfigJson } from "../model/families.js";
export { GemmaError, ConfigError, CheckpointError, TokenizerError, GenerationError } from "../errors.js";
export { GemmaTokenizer } from "../tokenizer/tokenizer.js";
export { tokenizerFromJson } from "../tokenizer/hf-codec.js";
export { encodeChat, type ChatMessage } from "../tokenizer/chat-template.js";
export { Generation, type GenerateOptions, type GeneratedToken, type FinishReason } from "../generate/generation.js";
export { ChatSession } from "../generate/chat-session.js";
export { jsKernels } from "../backend/js/index.js";
export { createWasmKernels } from "../backend/wasm/index.js";
export type { Kernels } from "../backend/kernels.js";
export type { ByteSource } from "../weights/byte-source.js";
export { BlobSource } from "./blob-source.js";
export { HttpRangeSource, HttpStatusError } from "./http-source.js";
export { ModelCache, CacheQuotaError, type CacheEntry } from "./opfs-cache.js";
export { pickedFiles, urlFiles, type ModelFiles, type UrlFilesOptions } from "./model-files.js";
export { openModelFiles, loadModelFromFiles } from "./load.js";
export { browserWasmHost, type BrowserWasmHostOptions } from "./wasm-host.js";
export { GemmaWorkerClient, type Reply, type LoadCallbacks } from "./client.js";
export type { ModelSource, SamplingSettings, RuntimeRequest, RuntimeEvent, ModelInfo, ReplyStats } from "./protocol.js";
