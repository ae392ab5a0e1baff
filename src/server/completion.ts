/**
 * Runs one validated request on a slot and shapes the result as OpenAI's chat.completion /
 * text_completion objects, whole or as Server-Sent Event chunks.
 */
import type { GemmaModel } from "../gemma-model.js";
import { Generation, type FinishReason, type GeneratedToken } from "../generate/generation.js";
import { encodeChat } from "../tokenizer/chat-template.js";
import type { GemmaTokenizer } from "../tokenizer/tokenizer.js";
import { invalid } from "./api-error.js";
import type { CompletionRequest } from "./request.js";
import type { SlotPool } from "./slots.js";

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  prompt_tokens_details: { cached_tokens: number };
}

/** What a finished request reports to the log. */
export interface CompletionStats {
  promptTokens: number;
  completionTokens: number;
  cachedTokens: number;
  timeToFirstTokenMs: number | null;
  tokensPerSecond: number;
}

/** Prompt ids for a request. Client text is always encoded as text, never as control tokens. */
export function promptIds(model: GemmaModel, tokenizer: GemmaTokenizer, req: CompletionRequest): number[] {
  const ids = req.kind === "chat" ? encodeChat(tokenizer, req.messages) : tokenizer.encode(req.prompt, { addBos: true, parseControlTokens: false });
  const context = model.config.maxPositions;
  if (ids.length >= context) {
    throw invalid(
      `the prompt has ${ids.length} tokens but the model's context window is ${context} tokens (and at least one must be left to generate)`,
      req.kind === "chat" ? "messages" : "prompt",
      "context_length_exceeded",
    );
  }
  return ids;
}

/** OpenAI has no "abort": a cut-short answer is reported as truncated. */
function finishReason(reason: FinishReason | null): "stop" | "length" {
  return reason === "stop" ? "stop" : "length";
}

/** A started generation on a slot, with timing. Always call `finish` to free the slot. */
export class CompletionRun {
  readonly generation: Generation;
  private readonly started = performance.now();
  private firstTokenAt: number | null = null;
  private released = false;

  constructor(
    private readonly pool: SlotPool,
    private readonly slot: Awaited<ReturnType<SlotPool["acquire"]>>,
    model: GemmaModel,
    ids: number[],
    req: CompletionRequest,
    signal: AbortSignal,
  ) {
    const room = model.config.maxPositions - ids.length;
    this.generation = new Generation(model.generationContext(slot.sequence), ids, {
      maxTokens: Math.min(req.maxTokens ?? room, room),
      temperature: req.temperature,
      topP: req.topP,
      topK: req.topK,
      minP: req.minP,
      presencePenalty: req.presencePenalty,
      frequencyPenalty: req.frequencyPenalty,
      stop: req.stop,
      signal,
      ...(req.seed === undefined ? {} : { seed: req.seed }),
      ...(req.logprobs === null ? {} : { logprobs: req.logprobs }),
    });
  }

  async *tokens(): AsyncGenerator<GeneratedToken> {
    for await (const token of this.generation) {
      this.firstTokenAt ??= performance.now();
      yield token;
    }
  }

  get finishReason(): "stop" | "length" {
    return finishReason(this.generation.finishReason);
  }

  usage(): Usage {
    const g = this.generation;
    return {
      prompt_tokens: g.promptTokens,
      completion_tokens: g.completionTokens,
      total_tokens: g.promptTokens + g.completionTokens,
      prompt_tokens_details: { cached_tokens: g.reusedPromptTokens },
    };
  }

  finish(): CompletionStats {
    if (!this.released) {
      this.released = true;
      this.pool.release(this.slot);
    }
    const g = this.generation;
    const seconds = (performance.now() - this.started) / 1000;
    return {
      promptTokens: g.promptTokens,
      completionTokens: g.completionTokens,
      cachedTokens: g.reusedPromptTokens,
      timeToFirstTokenMs: this.firstTokenAt === null ? null : this.firstTokenAt - this.started,
      tokensPerSecond: seconds > 0 ? g.completionTokens / seconds : 0,
    };
  }
}

interface LogprobEntry {
  token: string;
  logprob: number;
  bytes: number[];
}

function entry(tokenizer: GemmaTokenizer, id: number, logprob: number): LogprobEntry {
  const token = tokenizer.decode([id]);
  return { token, logprob, bytes: [...new TextEncoder().encode(token)] };
}

/** Chat-style logprobs for one token: {token, logprob, bytes, top_logprobs}. */
export function chatLogprob(tokenizer: GemmaTokenizer, t: GeneratedToken): LogprobEntry & { top_logprobs: LogprobEntry[] } {
  return { ...entry(tokenizer, t.id, t.logprob ?? 0), top_logprobs: (t.topLogprobs ?? []).map((a) => entry(tokenizer, a.id, a.logprob)) };
}

/** Legacy completions logprobs for a list of tokens: parallel arrays. */
export function textLogprobs(tokenizer: GemmaTokenizer, tokens: GeneratedToken[], startOffset: number) {
  let offset = startOffset;
  const out = { tokens: [] as string[], token_logprobs: [] as number[], top_logprobs: [] as Record<string, number>[], text_offset: [] as number[] };
  for (const t of tokens) {
    out.tokens.push(tokenizer.decode([t.id]));
    out.token_logprobs.push(t.logprob ?? 0);
    out.top_logprobs.push(Object.fromEntries((t.topLogprobs ?? []).map((a) => [tokenizer.decode([a.id]), a.logprob])));
    out.text_offset.push(offset);
    offset += t.text.length;
  }
  return out;
}
