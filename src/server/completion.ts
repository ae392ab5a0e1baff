/**
 * Runs one validated request on a slot and sends the result, whole or as Server-Sent Events, in
 * OpenAI's shapes (openai-shapes.ts).
 */
import type { Context } from "hono";
import { streamSSE } from "hono/streaming";
import type { GemmaModel } from "../gemma-model.js";
import { Generation, type GeneratedToken } from "../generate/generation.js";
import { encodeChat } from "../tokenizer/chat-template.js";
import type { GemmaTokenizer } from "../tokenizer/tokenizer.js";
import { ApiError, invalid } from "./api-error.js";
import {
  chatChunk,
  chatLogprob,
  finishReason,
  offersTools,
  textChunk,
  toolCallDeltas,
  textLogprobs,
  usageChunk,
  usageOf,
  wholeResponse,
  type Meta,
  type Usage,
} from "./openai-shapes.js";
import type { CompletionRequest } from "./request.js";
import type { SlotQueue } from "./slot-queue.js";
import { splitToolCalls, ToolCallHoldback } from "../generate/tools.js";

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
  const ids =
    req.kind === "chat" ? encodeChat(tokenizer, req.messages) : tokenizer.encode(req.prompt, { addBos: true, parseControlTokens: false });
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

/** A started generation on a slot, with timing. Always call `finish` to free the slot. */
export class CompletionRun {
  readonly generation: Generation;
  private readonly started = performance.now();
  private firstTokenAt: number | null = null;
  private released = false;

  constructor(
    private readonly pool: SlotQueue,
    private readonly slot: Awaited<ReturnType<SlotQueue["acquire"]>>,
    model: GemmaModel,
    ids: number[],
    req: CompletionRequest,
    signal: AbortSignal,
  ) {
    const room = model.config.maxPositions - ids.length;
    this.generation = new Generation({ ...model.generationContext(slot.sequence), batcher: pool.batcher }, ids, {
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
      ...(req.responseFormat === null ? {} : { responseFormat: req.responseFormat }),
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
    return usageOf(this.generation);
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

/**
 * Sends a run's tokens as one JSON object or as a stream of chunks ending in `[DONE]`; `done` is
 * called once the generation has ended (finished, stopped or aborted).
 */
export async function sendCompletion(
  c: Context,
  run: CompletionRun,
  req: CompletionRequest,
  meta: Meta,
  tokenizer: GemmaTokenizer,
  controller: AbortController,
  log: (line: string) => void,
  done: (status: string) => void,
): Promise<Response> {
  const { signal } = controller;
  if (!req.stream) {
    const tokens: GeneratedToken[] = [];
    try {
      for await (const t of run.tokens()) tokens.push(t);
    } finally {
      done(signal.aborted ? "aborted" : "200");
    }
    return c.json(wholeResponse(tokenizer, req, meta, run.finishReason, run.usage(), tokens));
  }
  const chat = req.kind === "chat";
  return streamSSE(c, async (stream) => {
    stream.onAbort(() => controller.abort());
    try {
      const chunk = (payload: object) => stream.writeSSE({ data: JSON.stringify(payload) });
      if (chat) await chunk(chatChunk(meta, { role: "assistant", content: "" }, null, null, req));
      // With tools, text that may begin a call is held back until it is clear which it is.
      const holdback = chat && offersTools(req) ? new ToolCallHoldback() : null;
      let textOffset = 0;
      for await (const t of run.tokens()) {
        const logprobs = req.logprobs === null ? null : { content: [chatLogprob(tokenizer, t)] };
        if (holdback) {
          const content = holdback.push(t.text);
          if (content !== "" || logprobs) await chunk(chatChunk(meta, { content }, null, logprobs, req));
        } else if (chat) await chunk(chatChunk(meta, { content: t.text }, null, logprobs, req));
        else await chunk(textChunk(meta, t.text, null, req.logprobs === null ? null : textLogprobs(tokenizer, [t], textOffset)));
        textOffset += t.text.length;
      }
      let finish: string = run.finishReason;
      if (holdback) {
        const { calls } = splitToolCalls(holdback.text);
        const rest = calls ? "" : holdback.flush();
        if (rest !== "") await chunk(chatChunk(meta, { content: rest }, null, null, req));
        if (calls) {
          await chunk(chatChunk(meta, toolCallDeltas(calls), null, null, req));
          finish = "tool_calls";
        }
      }
      await chunk(chat ? chatChunk(meta, {}, finish, null, req) : textChunk(meta, "", run.finishReason, null));
      if (req.includeUsage) await chunk(usageChunk(meta, req.kind, run.usage()));
      await stream.writeSSE({ data: "[DONE]" });
    } catch (e) {
      // Headers are sent: report in-band, as OpenAI does, and end the stream.
      const error = e instanceof ApiError ? e : new ApiError(500, "internal server error", "server_error");
      if (!(e instanceof ApiError)) log(`error in stream ${meta.id}: ${(e as Error).stack ?? String(e)}`);
      await stream.writeSSE({ data: JSON.stringify(error.toJSON()) }).catch(() => {});
    } finally {
      done(signal.aborted ? "aborted" : "200 stream");
    }
  });
}
