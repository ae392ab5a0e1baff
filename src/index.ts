/**
 * gemma-ts's public API, by layer from the bottom up (docs/architecture.md). What is not exported
 * here is internal and may change.
 */

// Errors: every error gemma-ts throws is a GemmaError naming the file, field or tensor.
export { GemmaError, ConfigError, CheckpointError, TokenizerError, GenerationError } from "./errors.js";

// Files: safetensors checkpoints, GGUF, the Hugging Face Hub cache.
export type { ByteSource } from "./weights/byte-source.js";
export { NodeFileSource } from "./weights/node-file-source.js";
export { Checkpoint, type TensorSource, type TensorLocation } from "./weights/checkpoint.js";
export { openCheckpointFolder } from "./weights/checkpoint-folder.js";
export { SafetensorsFile, type TensorEntry, type StoredTensor } from "./weights/safetensors.js";
export { GgufFile, type GgufMetadata, type GgufTensorEntry } from "./weights/gguf.js";
export { pullModel, cachedSnapshot, type PullOptions, type PullProgress, type PullResult, type FileProgress } from "./hub/pull.js";
export { resolveModelPath } from "./hub/resolve.js";
export { hubSettings, type HubOptions, type HubSettings } from "./hub/settings.js";
export { HubError, parseRepoSpec, type RepoSpec } from "./hub/repo-id.js";

// Tokenizer and chat template.
export { loadTokenizer } from "./tokenizer/load.js";
export { GemmaTokenizer, type EncodeOptions, type DecodeOptions } from "./tokenizer/tokenizer.js";
export { tokenizerFromJson } from "./tokenizer/hf-codec.js";
export {
  encodeChat,
  renderChat,
  GEMMA_CHAT_TEMPLATE,
  type ChatMessage,
  type ChatRole,
  type EncodeChatOptions,
} from "./tokenizer/chat-template.js";
export { StreamDecoder } from "./tokenizer/stream-decoder.js";

// Kernels: the interface a backend implements, and the two that ship.
export type { Kernels, Weight, AttentionArgs, Activation } from "./backend/kernels.js";
export { jsKernels } from "./backend/js/index.js";
export { createWasmKernels, type WasmKernelOptions } from "./backend/wasm/index.js";

// Model families: configs, the forward pass behind CausalLM, GGUF export.
export {
  PRESETS,
  parseConfigJson,
  configFromHf,
  configToHf,
  type GemmaConfig,
  type PresetName,
  type AttentionKind,
  type ModelFamily,
} from "./model/gemma/config.js";
export { parameterCount, activeParameterCount } from "./model/gemma/weights.js";
export { RECURRENT_PRESETS, type RecurrentGemmaConfig, type BlockKind } from "./model/recurrent-gemma/config.js";
export { parseModelConfigJson } from "./model/families.js";
export type { CausalLM, DecodeState, ModelConfig, StateOptions } from "./model/causal-lm.js";
export type { ForwardOptions, NormalizerDtype } from "./model/gemma/forward.js";
export type { Quantization } from "./model/tensors.js";
export { assembleForward, type AssembleOptions } from "./model/assemble.js";
export { encodeGgufModel, ggufModelParts, type GgufExportOptions, type GgufMatrixType, type GgufVocabulary } from "./model/gguf-export.js";

// Generation: sampling, the generation loop, sequences with a KV cache, chat sessions.
export {
  Generation,
  type GenerateOptions,
  type GeneratedToken,
  type TokenLogprob,
  type FinishReason,
  type GenerationContext,
} from "./generate/generation.js";
export { Sampler, argmax, type SamplingOptions } from "./generate/sampler.js";
export { Sequence } from "./generate/sequence.js";
export { ChatSession } from "./generate/chat-session.js";
export { checkResponseFormat, type ResponseFormat, type JsonSchema } from "./generate/response-format.js";
export {
  splitToolCalls,
  toolInstruction,
  TOOL_CALL_BEGIN,
  type ToolSpec,
  type ToolChoice,
  type ToolRequest,
  type ToolCall,
  type ToolChatMessage,
} from "./generate/tools.js";
export { DecodeBatcher } from "./generate/batcher.js";

// The model: logits, generate, chat.
export { GemmaModel, assembleModel, type GenerationInput, type ChatOptions, type ModelGenerateOptions } from "./gemma-model.js";

// Evaluation and training: perplexity, students by next-token prediction or distillation, LoRA.
export { perplexity, type PerplexityResult } from "./eval/perplexity.js";
export { TrainableGemma, LORA_TARGETS, type SequenceTarget, type SequenceLoss } from "./train/model.js";
export { Trainer, type TrainSettings, type TrainLog } from "./train/trainer.js";
export { loadTextDataset, DataError, type TextDataset } from "./train/data.js";
export { writeTeacherTargets, TeacherTargets, TargetsError, type TargetsMeta } from "./train/teacher-targets.js";
export { saveTrainedModel, loadTrainable, loadTrainerState } from "./train/checkpoint-io.js";
export { loadChatExamples, trainLora, saveLoraAdapter, type ChatExample, type LoraSettings } from "./train/lora.js";

// The Node front door: a folder, GGUF file or Hub repo id to a model; the bundled demo model.
export { loadModel, loadConfig, openCheckpoint, buildForward, resolveKernels, type LoadModelOptions } from "./gemma.js";
export { BUNDLED_MODEL } from "./bundled.js";

// The OpenAI-compatible server.
export { createApp, type ServerOptions, type GemmaServerApp } from "./server/app.js";
export { startServer, type ListenOptions, type RunningServer } from "./server/serve.js";
