/**
 * The public model: a loaded model (config, tokenizer, forward pass) that computes logits,
 * generates and chats, and the step that builds one from any tensor source. Platform-free, shared
 * by Node's `loadModel` (gemma.ts) and the browser loaders; the layer above `generate/`.
 */
import { jsKernels } from "./backend/js/index.js";
import type { Kernels } from "./backend/kernels.js";
import { usefulFeatures } from "./backend/webgpu/shaders.js";
import { CheckpointError, ConfigError, GenerationError, TokenizerError } from "./errors.js";
import { ChatSession } from "./generate/chat-session.js";
import { Generation, type GenerateOptions, type GenerationContext } from "./generate/generation.js";
import { Sequence } from "./generate/sequence.js";
import { toolMessages, toolResponseFormat, type ToolChatMessage, type ToolRequest } from "./generate/tools.js";
import { assembleForward, type AssembleOptions } from "./model/assemble.js";
import type { CausalLM, ModelConfig, StateOptions } from "./model/causal-lm.js";
import type { GemmaForward } from "./model/gemma/forward.js";
import { GpuGemmaForward, type GpuForwardOptions, gpuUnsupported } from "./model/gemma/gpu-forward.js";
import { GgufCheckpoint } from "./model/gguf-checkpoint.js";
import { encodeChat, type ChatMessage } from "./tokenizer/chat-template.js";
import type { GemmaTokenizer } from "./tokenizer/tokenizer.js";
import type { TensorSource } from "./weights/checkpoint.js";

export type { AssembleOptions };

/** A prompt string (tokenized with BOS), a chat conversation, or token ids used as given. */
export type GenerationInput = string | readonly ChatMessage[] | readonly ToolChatMessage[] | readonly number[];

export interface ModelGenerateOptions extends GenerateOptions {
  /**
   * Functions the model may call (chat messages input): their description joins the system turn
   * and the reply is decoded as text or a call (generate/tools.ts); read the calls with
   * `splitToolCalls(generation.text)`.
   */
  tools?: ToolRequest;
}

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
    const pass = this.forwardPass;
    return pass.forwardAsync ? pass.forwardAsync(ids, null, "all") : pass.forward(ids, null, "all");
  }

  /** Token ids for a prompt string (with BOS), a conversation (chat template) or ids as given. */
  encode(input: GenerationInput): number[] {
    if (typeof input === "string") return this.requireTokenizer("a text prompt").encode(input, { addBos: true });
    if (!Array.isArray(input)) throw new GenerationError("input must be a string, a list of chat messages or a list of token ids");
    if (input.every((x) => typeof x === "number")) return [...(input as readonly number[])];
    return encodeChat(this.requireTokenizer("chat messages"), input as readonly ChatMessage[]);
  }

  /** Streams generated tokens; see GenerateOptions for sampling, stops and cancellation, ModelGenerateOptions for tools. */
  generate(input: GenerationInput, options: ModelGenerateOptions = {}): Generation {
    const { tools, ...rest } = options;
    const context = this.generationContext(new Sequence(this.forwardPass));
    if (!tools) return new Generation(context, this.encode(input), rest);
    if (!Array.isArray(input) || !input.every((m) => typeof m === "object" && m !== null))
      throw new GenerationError("tools need the input as chat messages");
    if (rest.responseFormat) throw new GenerationError("tools and responseFormat cannot be combined");
    const ids = encodeChat(this.requireTokenizer("tools"), toolMessages(input as readonly ToolChatMessage[], tools));
    const format = toolResponseFormat(tools);
    return new Generation(context, ids, format ? { ...rest, responseFormat: format } : rest);
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
    if (!this.tokenizer)
      throw new TokenizerError(`${what} needs a tokenizer, and this checkpoint has no tokenizer.json; pass token ids instead`);
    return this.tokenizer;
  }
}

/** A model from an opened source: checks the tokenizer fits the vocabulary, then assembles it. */
export async function assembleModel(
  source: TensorSource,
  config: ModelConfig,
  tokenizer: GemmaTokenizer | null,
  kernels: Kernels,
  options: AssembleOptions = {},
): Promise<GemmaModel> {
  if (tokenizer && tokenizer.vocabSize > config.vocabSize) {
    throw new TokenizerError(
      `${source.dir}: the tokenizer has ${tokenizer.vocabSize} tokens but ` +
        `${source instanceof GgufCheckpoint ? "token_embd.weight has" : "config.json's vocab_size is"} ${config.vocabSize}`,
    );
  }
  try {
    const { forwardPass, weightBytes } = await assembleForward(source, config, kernels, options);
    return new GemmaModel(config, tokenizer, forwardPass, weightBytes);
  } catch (e) {
    if (e instanceof RangeError) throw new CheckpointError(`${source.dir}: out of memory while loading (${e.message})`, source.dir);
    throw e;
  }
}

/** A WebGPU load: the model and its adapter's name, or why the model cannot run there (the caller falls back or says so). */
export type GpuModelLoad = { model: GemmaModel; adapter: string } | { model: null; reason: string };

/**
 * The model with its forward pass on a device of `adapter` (model/gemma/gpu-forward.ts), in the
 * browser or in Node through Dawn: what the GPU forward does not run yet is refused before any
 * weight is read; the weights load with the TypeScript kernels (their stored layout, which the
 * shaders read as it is) and move to the device.
 */
export async function assembleGpuModel(
  source: TensorSource,
  config: ModelConfig,
  tokenizer: GemmaTokenizer | null,
  adapter: GPUAdapter,
  options: AssembleOptions & GpuForwardOptions = {},
): Promise<GpuModelLoad> {
  const { maxBindingBytes, promptChunk, ...assemble } = options;
  if (config.family === "recurrent_gemma") return { model: null, reason: "RecurrentGemma is not on WebGPU yet" };
  const unsupported = gpuUnsupported(config);
  if (unsupported) return { model: null, reason: unsupported };
  const device = await adapter.requestDevice({
    requiredFeatures: usefulFeatures(adapter),
    requiredLimits: {
      maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize,
      maxBufferSize: adapter.limits.maxBufferSize,
    },
  });
  const cpu = await assembleModel(source, config, tokenizer, jsKernels, assemble);
  let gpuPass: GpuGemmaForward;
  try {
    gpuPass = new GpuGemmaForward(device, config, (cpu.forwardPass as GemmaForward).weights, { maxBindingBytes, promptChunk });
  } catch (e) {
    // A matrix row over the device's limits: the caller falls back with the reason.
    if (!(e instanceof ConfigError)) throw e;
    device.destroy();
    return { model: null, reason: e.message };
  }
  const { vendor, architecture, description } = adapter.info;
  const name = [vendor, architecture, description].filter(Boolean).join(" ") || "WebGPU adapter";
  return { model: new GemmaModel(config, tokenizer, gpuPass, cpu.weightBytes), adapter: name };
}
