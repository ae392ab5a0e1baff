/**
 * The generation loop as an async iterable of tokens: prefill, sample, stream text, stop on
 * end-of-turn/eos, stop strings, maxTokens, the context limit, or an AbortSignal.
 */
import { GenerationError } from "../errors.js";
import { StreamDecoder } from "../tokenizer/stream-decoder.js";
import type { GemmaTokenizer } from "../tokenizer/tokenizer.js";
import { tokenLogprobs } from "./logprobs.js";
import { Sampler, type SamplingOptions } from "./sampler.js";
import type { Sequence } from "./sequence.js";
import { StopStringFilter, type GeneratedToken } from "./stop-strings.js";
import { compileConstraint } from "./grammar.js";
import type { DecodeBatcher } from "./batcher.js";
import { yieldToEventLoop } from "./event-loop.js";
import { freeBuffer } from "../weights/free-buffer.js";
import { checkResponseFormat, type ResponseFormat } from "./response-format.js";

export type { GeneratedToken, TokenLogprob } from "./stop-strings.js";

export interface GenerateOptions extends SamplingOptions {
  /** Most tokens to generate (default 256). */
  maxTokens?: number;
  /** Stop strings: generation ends before any of them, which is not part of the output. */
  stop?: string | string[];
  /** Aborting ends the iteration early with finishReason "abort". */
  signal?: AbortSignal;
  /** Attach each token's logprob and this many top alternatives (0-20); unset = no logprobs. */
  logprobs?: number;
  /**
   * The reply's form: JSON valid against a schema, any JSON object, or an EBNF grammar, enforced
   * token by token (grammar.ts); "text" (default) is free text. Needs a tokenizer.
   */
  responseFormat?: ResponseFormat;
}

/** "stop": an end token or stop string; "length": maxTokens or the context limit; "abort": the signal. */
export type FinishReason = "stop" | "length" | "abort";

export interface GenerationContext {
  sequence: Sequence;
  tokenizer: GemmaTokenizer | null;
  /** Token ids that end generation (<eos>, <end_of_turn>); never emitted. */
  stopTokenIds: ReadonlySet<number>;
  maxPositions: number;
  /** Runs this generation's forward passes together with other generations' (a server's slots); absent: alone. */
  batcher?: DecodeBatcher;
}

export class Generation implements AsyncIterable<GeneratedToken> {
  finishReason: FinishReason | null = null;
  readonly promptTokens: number;
  /** Tokens sampled so far, including a final end token. */
  completionTokens = 0;
  /** Prompt tokens taken from the KV cache instead of recomputed. */
  reusedPromptTokens = 0;
  /** Text emitted so far. */
  text = "";
  private started = false;

  constructor(
    private readonly context: GenerationContext,
    readonly promptIds: readonly number[],
    private readonly options: GenerateOptions = {},
    /** Called once when the stream has ended (for any reason but an exception). */
    private readonly onFinish?: (generation: Generation) => void,
  ) {
    this.promptTokens = promptIds.length;
    const maxTokens = options.maxTokens ?? 256;
    if (!Number.isInteger(maxTokens) || maxTokens < 1)
      throw new GenerationError(`maxTokens must be a positive integer, found ${maxTokens}`);
    if (promptIds.length === 0) throw new GenerationError("the prompt has no tokens");
    if (promptIds.length >= context.maxPositions) {
      throw new GenerationError(`the prompt has ${promptIds.length} tokens; the model's context holds ${context.maxPositions}`);
    }
    const stops = typeof options.stop === "string" ? [options.stop] : (options.stop ?? []);
    if (!stops.every((s) => typeof s === "string" && s.length > 0)) throw new GenerationError("stop strings must be non-empty strings");
    const { logprobs } = options;
    if (logprobs !== undefined && (!Number.isInteger(logprobs) || logprobs < 0 || logprobs > 20)) {
      throw new GenerationError(`logprobs must be an integer from 0 to 20, found ${logprobs}`);
    }
    // Build the sampler now so bad sampling options fail at the call, not mid-stream.
    this.sampler = new Sampler(options);
    const format = options.responseFormat === undefined ? null : checkResponseFormat(options.responseFormat);
    this.responseFormat = format?.type === "text" ? null : format;
    if (this.responseFormat && !context.tokenizer) throw new GenerationError("responseFormat needs a model with a tokenizer");
  }

  private readonly sampler: Sampler;
  private readonly responseFormat: ResponseFormat | null;

  /** Runs to the end and returns the full text. */
  async complete(): Promise<string> {
    for await (const _ of this) {
      // Draining the iterator is the work.
    }
    return this.text;
  }

  async *[Symbol.asyncIterator](): AsyncIterator<GeneratedToken> {
    if (this.started) throw new GenerationError("a Generation can be iterated only once");
    this.started = true;
    const { sequence, tokenizer, stopTokenIds, maxPositions } = this.context;
    const { signal } = this.options;
    const maxTokens = this.options.maxTokens ?? 256;
    const stops = typeof this.options.stop === "string" ? [this.options.stop] : (this.options.stop ?? []);
    const decoder = tokenizer ? new StreamDecoder(tokenizer) : null;
    const filter = new StopStringFilter(stops);
    const emit = (tokens: GeneratedToken[]) => {
      for (const t of tokens) this.text += t.text;
      return tokens;
    };

    if (signal?.aborted) {
      this.finishReason = "abort";
      return;
    }
    this.sampler.observePrompt(this.promptIds);
    const { batcher } = this.context;
    let logits = batcher ? await batcher.prefill(sequence, this.promptIds) : await sequence.prefillAsync(this.promptIds);
    this.reusedPromptTokens = sequence.reusedTokens;
    const constraint = this.responseFormat
      ? await compileConstraint(tokenizer!, this.responseFormat, [...stopTokenIds], logits.length)
      : null;
    try {
      for (;;) {
        await yieldToEventLoop();
        if (signal?.aborted) {
          this.finishReason = "abort";
          break;
        }
        await constraint?.restrict(logits);
        const id = this.sampler.sample(logits);
        this.sampler.observe(id);
        this.completionTokens++;
        if (stopTokenIds.has(id)) {
          this.finishReason = "stop";
          break;
        }
        constraint?.accept(id);
        const token: GeneratedToken = { id, text: decoder ? decoder.push(id) : "" };
        if (this.options.logprobs !== undefined) Object.assign(token, tokenLogprobs(logits, id, this.options.logprobs));
        const { ready, stopped } = filter.push(token);
        yield* emit(ready);
        if (stopped) {
          this.finishReason = "stop";
          break;
        }
        if (this.completionTokens >= maxTokens || sequence.ids.length + 1 >= maxPositions) {
          this.finishReason = "length";
          break;
        }
        // This step's logits are dead once sampled: their 1 MiB goes back now, not at a GC.
        freeBuffer(logits);
        logits = batcher ? await batcher.feed(sequence, [id]) : await sequence.feedAsync([id]);
      }
    } finally {
      constraint?.dispose();
    }
    // An incomplete multi-byte character left in the decoder is dropped, never printed by halves.
    yield* emit(filter.flush());
    this.onFinish?.(this);
  }
}
