/**
 * OpenAI's JSON shapes, in one place: chat.completion and text_completion objects, their
 * Server-Sent Event chunks, usage and logprobs.
 */
import type { FinishReason, GeneratedToken, Generation } from "../generate/generation.js";
import type { GemmaTokenizer } from "../tokenizer/tokenizer.js";
import type { CompletionRequest } from "./request.js";
import { splitToolCalls, type ToolCall } from "../generate/tools.js";

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  prompt_tokens_details: { cached_tokens: number };
}

/** The usage object of a generation (prompt tokens reused from the cache as cached_tokens). */
export function usageOf(g: Generation): Usage {
  return {
    prompt_tokens: g.promptTokens,
    completion_tokens: g.completionTokens,
    total_tokens: g.promptTokens + g.completionTokens,
    prompt_tokens_details: { cached_tokens: g.reusedPromptTokens },
  };
}

/** OpenAI has no "abort": a cut-short answer is reported as truncated. */
export function finishReason(reason: FinishReason | null): "stop" | "length" {
  return reason === "stop" ? "stop" : "length";
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
  const out = {
    tokens: [] as string[],
    token_logprobs: [] as number[],
    top_logprobs: [] as Record<string, number>[],
    text_offset: [] as number[],
  };
  for (const t of tokens) {
    out.tokens.push(tokenizer.decode([t.id]));
    out.token_logprobs.push(t.logprob ?? 0);
    out.top_logprobs.push(Object.fromEntries((t.topLogprobs ?? []).map((a) => [tokenizer.decode([a.id]), a.logprob])));
    out.text_offset.push(offset);
    offset += t.text.length;
  }
  return out;
}

/** What every object of one response repeats. */
export interface Meta {
  id: string;
  created: number;
  model: string;
}

export function wholeResponse(
  tokenizer: GemmaTokenizer,
  req: CompletionRequest,
  meta: Meta,
  finish: "stop" | "length",
  usage: Usage,
  tokens: GeneratedToken[],
) {
  const text = tokens.map((t) => t.text).join("");
  if (req.kind === "chat") {
    const { content, calls } = offersTools(req) ? splitToolCalls(text) : { content: text, calls: null };
    return {
      ...meta,
      object: "chat.completion",
      choices: [
        {
          index: 0,
          message: { role: "assistant", content, refusal: null, ...(calls ? { tool_calls: calls } : {}) },
          logprobs: req.logprobs === null ? null : { content: tokens.map((t) => chatLogprob(tokenizer, t)), refusal: null },
          finish_reason: calls ? "tool_calls" : finish,
        },
      ],
      usage,
    };
  }
  return {
    ...meta,
    object: "text_completion",
    choices: [{ index: 0, text, logprobs: req.logprobs === null ? null : textLogprobs(tokenizer, tokens, 0), finish_reason: finish }],
    usage,
  };
}

/** Whether the model was offered functions to call (so its reply may hold calls). */
export function offersTools(req: CompletionRequest): boolean {
  return req.tools !== null && req.tools.choice !== "none";
}

/** OpenAI's streamed form of calls: each with its index, id, name and the whole arguments string. */
export function toolCallDeltas(calls: ToolCall[]) {
  return { tool_calls: calls.map((call, index) => ({ index, ...call })) };
}

export function chatChunk(meta: Meta, delta: object, finishReason: string | null, logprobs: object | null, req: CompletionRequest) {
  const choice = { index: 0, delta, logprobs, finish_reason: finishReason };
  return { ...meta, object: "chat.completion.chunk", choices: [choice], ...(req.includeUsage ? { usage: null } : {}) };
}

export function textChunk(meta: Meta, text: string, finishReason: string | null, logprobs: object | null) {
  return { ...meta, object: "text_completion", choices: [{ index: 0, text, logprobs, finish_reason: finishReason }] };
}

/** The last chunk of a stream when the client asked for usage (stream_options.include_usage). */
export function usageChunk(meta: Meta, kind: "chat" | "text", usage: Usage) {
  return { ...meta, object: kind === "chat" ? "chat.completion.chunk" : "text_completion", choices: [], usage };
}

/** A model of GET /v1/models. */
export function modelObject(id: string, created: number) {
  return { id, object: "model", created, owned_by: "gemma-ts" };
}
