/**
 * The library's front door: `loadModel(dir)` reads config, tokenizer and weights of a Hugging Face
 * checkpoint folder or GGUF file and returns a model that computes logits, generates and chats.
 */
import { readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { jsKernels } from "./backend/js/index.js";
import type { Kernels, Weight } from "./backend/kernels.js";
import { parseModelConfigJson } from "./config.js";
import { RecurrentGemmaForward } from "./model/recurrent-gemma/forward.js";
import { loadRecurrentWeights, type RecurrentGemmaWeights } from "./model/recurrent-gemma/weights.js";
import { CheckpointError, ConfigError, GemmaError, GenerationError, TokenizerError } from "./errors.js";
import { ChatSession } from "./generate/chat-session.js";
import { Generation, type GenerateOptions, type GenerationContext } from "./generate/generation.js";
import { Sequence } from "./generate/sequence.js";
import { GemmaForward, type ForwardOptions } from "./model/forward.js";
import type { CausalLM, ModelConfig, StateOptions } from "./model/causal-lm.js";
import { heldBytes, loadWeights, type GemmaWeights, type Quantization } from "./model/weights.js";
import { GgufCheckpoint } from "./model/gguf-checkpoint.js";
import { readLoraAdapter } from "./model/lora-adapter.js";
import { createWasmKernels } from "./backend/wasm/index.js";
import { encodeChat, type ChatMessage } from "./tokenizer/chat-template.js";
import { hasTokenizer, loadTokenizer } from "./tokenizer/load.js";
import type { GemmaTokenizer } from "./tokenizer/tokenizer.js";
import { Checkpoint, type TensorSource } from "./weights/checkpoint.js";
import type { PullProgress } from "./hub/pull.js";
import { resolveModelPath } from "./hub/resolve.js";
import type { HubOptions } from "./hub/settings.js";

export interface LoadModelOptions extends ForwardOptions, HubOptions {
  /**
   * Compute backend: "wasm" (WebAssembly SIMD matmuls, the default when its module is built) or "js"
   * (the TypeScript reference), or any Kernels implementation.
   */
  kernels?: Kernels | "js" | "wasm";
  /** Called as weights are read: bytes so far and in total. */
  onProgress?: (loadedBytes: number, totalBytes: number) => void;
  /** Diagnostic messages (ignored tensors and the like). */
  onDebug?: (message: string) => void;
  /** Quantize weight matrices on load to llama.cpp's blocks: "q8_0" (about half of bf16), "q4_0" (about a quarter); "none" (default) keeps their stored width. */
  quant?: Quantization;
  /** A PEFT LoRA adapter folder merged into the weights as they load. */
  lora?: string;
  /** Threads for the wasm backend's matmuls (default: the number of cores). */
  threads?: number;
  /** Progress of a Hub download, when the model is a repo id not yet in the cache. */
  onDownloadProgress?: (progress: PullProgress) => void;
}

/** A prompt string (tokenized with BOS), a chat conversation, or token ids used as given. */
export type GenerationInput = string | readonly ChatMessage[] | readonly number[];

export interface ChatOptions extends StateOptions {
  /** A system prompt, folded into the first user turn (Gemma has no system role). */
  system?: string;
}

export class GemmaModel {
  /** Token ids that end a reply: the config's eos ids and `<end_of_turn>`. */
  readonly stopTokenIds: ReadonlySet<number>;

  constructor(
    readonly config: ModelConfig,
    readonly tokenizer: GemmaTokenizer | null,
    readonly forwardPass: CausalLM,
    /** Bytes of weights held in memory (their stored width). */
    readonly weightBytes: number,
  ) {
    const stops = new Set(config.eosTokenIds);
    if (tokenizer) {
      stops.add(tokenizer.eosTokenId);
      if (tokenizer.endOfTurnId !== null) stops.add(tokenizer.endOfTurnId);
    }
    this.stopTokenIds = stops;
  }

  /** Logits of every position, [ids.length, vocab] row-major, after the final soft-cap; no cache. */
  async logits(ids: readonly number[]): Promise<Float32Array> {
    return this.forwardPass.forward(ids, null, "all");
  }

  /** Token ids for a prompt string (with BOS), a conversation (chat template) or ids as given. */
  encode(input: GenerationInput): number[] {
    if (typeof input === "string") return this.requireTokenizer("a text prompt").encode(input, { addBos: true });
    if (!Array.isArray(input)) throw new GenerationError("input must be a string, a list of chat messages or a list of token ids");
    if (input.every((x) => typeof x === "number")) return [...(input as readonly number[])];
    return encodeChat(this.requireTokenizer("chat messages"), input as readonly ChatMessage[]);
  }

  /** Streams generated tokens; see GenerateOptions for sampling, stops and cancellation. */
  generate(input: GenerationInput, options: GenerateOptions = {}): Generation {
    return new Generation(this.generationContext(new Sequence(this.forwardPass)), this.encode(input), options);
  }

  /** A conversation that reuses its KV cache from turn to turn. */
  chat(options: ChatOptions = {}): ChatSession {
    const tokenizer = this.requireTokenizer("chat");
    const { sequence, ...context } = this.generationContext(new Sequence(this.forwardPass, { rewindSlack: options.rewindSlack ?? 64 }));
    return new ChatSession(tokenizer, sequence, context, options.system);
  }

  /** A sequence with its own KV cache, for callers that drive generation themselves. */
  createSequence(options: StateOptions = {}): Sequence {
    return new Sequence(this.forwardPass, options);
  }

  generationContext(sequence: Sequence): GenerationContext {
    return { sequence, tokenizer: this.tokenizer, stopTokenIds: this.stopTokenIds, maxPositions: this.config.maxPositions };
  }

  private requireTokenizer(what: string): GemmaTokenizer {
    if (!this.tokenizer) throw new TokenizerError(`${what} needs a tokenizer, and this checkpoint has no tokenizer.json; pass token ids instead`);
    return this.tokenizer;
  }
}

/** Loads the weights a config needs from a tensor source and builds that family's forward pass. */
export async function buildForward(source: TensorSource, config: ModelConfig, options: LoadModelOptions = {}): Promise<{ forwardPass: CausalLM; weightBytes: number }> {
  const kernels = await resolveKernels(options.kernels, options.onDebug, options.threads);
  const lora = options.lora ? await readLoraAdapter(options.lora) : undefined;
  if (lora && config.family === "recurrent_gemma") throw new CheckpointError(`${options.lora}: LoRA adapters are supported for Gemma and Gemma 2 models`);
  const loadOptions = { ...options, lora, onMatrix: (w: Weight) => kernels.adopt?.([w]) };
  const weights = config.family === "recurrent_gemma" ? await loadRecurrentWeights(source, config, loadOptions) : await loadWeights(source, config, loadOptions);
  const weightBytes = heldBytes(weights);
  await kernels.ready?.();
  const forwardPass = config.family === "recurrent_gemma" ? new RecurrentGemmaForward(config, weights as RecurrentGemmaWeights, kernels) : new GemmaForward(config, weights as GemmaWeights, kernels, options);
  return { forwardPass, weightBytes };
}

/** A Kernels object for the option; "wasm" (and the default) fall back to "js" when the module is unavailable. */
export async function resolveKernels(choice: Kernels | "js" | "wasm" | undefined, onDebug?: (message: string) => void, threads?: number): Promise<Kernels> {
  if (typeof choice === "object") return choice;
  if (choice === "js") return jsKernels;
  try {
    return await createWasmKernels(threads === undefined ? {} : { threads });
  } catch (e) {
    if (choice === "wasm") throw new GemmaError(`the WebAssembly backend is unavailable: ${(e as Error).message}`);
    onDebug?.(`using the TypeScript kernels: ${(e as Error).message}`);
    return jsKernels;
  }
}

/** Reads and validates `dir/config.json`. */
export async function loadConfig(dir: string): Promise<ModelConfig> {
  const path = join(dir, "config.json");
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (e) {
    throw new ConfigError(`${path}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  return parseModelConfigJson(text, path);
}

/** A checkpoint's tensors, config and tokenizer: a GGUF file, or a Hugging Face folder. */
export async function openCheckpoint(path: string): Promise<{ checkpoint: TensorSource & { close(): Promise<void> }; config: ModelConfig; tokenizer: GemmaTokenizer | null }> {
  if (path.endsWith(".gguf") && (await stat(path).catch(() => null))?.isFile()) {
    const checkpoint = await GgufCheckpoint.open(path);
    return { checkpoint, config: checkpoint.config, tokenizer: checkpoint.tokenizer };
  }
  const checkpoint = await Checkpoint.open(path);
  try {
    const config = await loadConfig(checkpoint.dir);
    const tokenizer = (await hasTokenizer(checkpoint.dir)) ? await loadTokenizer(checkpoint.dir) : null;
    return { checkpoint, config, tokenizer };
  } catch (e) {
    await checkpoint.close();
    throw e;
  }
}

/**
 * Loads a model: a Hugging Face folder with config.json, model.safetensors (or shards with
 * model.safetensors.index.json) and, optionally, tokenizer.json + tokenizer_config.json; a GGUF
 * file (architectures gemma2 and gemma, tokenizer from its metadata); or a Hub repo id
 * (`google/gemma-2-2b-it`, `org/name@revision`), taken from the HF cache or downloaded.
 */
export async function loadModel(model: string, options: LoadModelOptions = {}): Promise<GemmaModel> {
  const { endpoint, token, cacheDir, offline, onDownloadProgress } = options;
  const hub = { endpoint, token, cacheDir, offline, onProgress: onDownloadProgress };
  const dir = await resolveModelPath(model, Object.fromEntries(Object.entries(hub).filter(([, v]) => v !== undefined)));
  const { checkpoint, config, tokenizer } = await openCheckpoint(dir);
  try {
    if (tokenizer && tokenizer.vocabSize > config.vocabSize) {
      throw new TokenizerError(`${checkpoint.dir}: the tokenizer has ${tokenizer.vocabSize} tokens but ${checkpoint instanceof GgufCheckpoint ? "token_embd.weight has" : "config.json's vocab_size is"} ${config.vocabSize}`);
    }
    const { forwardPass, weightBytes } = await buildForward(checkpoint, config, options);
    return new GemmaModel(config, tokenizer, forwardPass, weightBytes);
  } catch (e) {
    if (e instanceof RangeError) throw new CheckpointError(`${dir}: out of memory while loading (${e.message})`, dir);
    throw e;
  } finally {
    await checkpoint.close();
  }
}
