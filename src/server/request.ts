/**
 * Validation of OpenAI request bodies into one internal shape. Every wrong type or value becomes a
 * 400 naming the parameter; nothing unchecked reaches the model.
 */
import type { ChatMessage } from "../tokenizer/chat-template.js";
import { GenerationError } from "../errors.js";
import { checkResponseFormat, type ResponseFormat } from "../generate/response-format.js";
import { invalid } from "./api-error.js";
import { toolMessages, toolResponseFormat, type ToolChatMessage, type ToolCall, type ToolRequest } from "../generate/tools.js";
import { readTools } from "./tool-request.js";

export interface CompletionRequest {
  kind: "chat" | "text";
  model: string | null;
  messages: ChatMessage[];
  prompt: string;
  maxTokens: number | null;
  temperature: number;
  topP: number;
  topK: number;
  minP: number;
  presencePenalty: number;
  frequencyPenalty: number;
  seed: number | undefined;
  stop: string[];
  stream: boolean;
  includeUsage: boolean;
  /** null: no logprobs; otherwise how many alternatives per token. */
  logprobs: number | null;
  /** null: free text; otherwise the form the reply is decoded under. */
  responseFormat: ResponseFormat | null;
  /** The functions the model may call (chat only); null without `tools`. */
  tools: ToolRequest | null;
}

type Body = Record<string, unknown>;

function optionalNumber(body: Body, name: string, fallback: number, ok: (v: number) => boolean, expected: string): number {
  const v = body[name];
  if (v === undefined || v === null) return fallback;
  if (typeof v !== "number" || !Number.isFinite(v) || !ok(v)) throw invalid(`'${name}' must be ${expected}`, name);
  return v;
}

function optionalInt(body: Body, name: string, ok: (v: number) => boolean, expected: string): number | null {
  const v = body[name];
  if (v === undefined || v === null) return null;
  if (typeof v !== "number" || !Number.isInteger(v) || !ok(v)) throw invalid(`'${name}' must be ${expected}`, name);
  return v;
}

function optionalBoolean(body: Body, name: string): boolean {
  const v = body[name];
  if (v === undefined || v === null) return false;
  if (typeof v !== "boolean") throw invalid(`'${name}' must be a boolean`, name);
  return v;
}

function readStop(body: Body): string[] {
  const v = body["stop"];
  if (v === undefined || v === null) return [];
  const list = typeof v === "string" ? [v] : v;
  if (!Array.isArray(list) || list.length > 4 || !list.every((s) => typeof s === "string" && s.length > 0)) {
    throw invalid("'stop' must be a non-empty string or a list of up to 4 non-empty strings", "stop");
  }
  return list as string[];
}

/** OpenAI's content part types that carry images or audio. */
const MEDIA_PARTS = new Set(["image_url", "input_image", "image", "input_audio", "audio", "file"]);

/** A message's content: a string, or OpenAI's list of {type: "text", text} parts. */
function readContent(raw: unknown, index: number): string {
  if (typeof raw === "string") return raw;
  if (
    Array.isArray(raw) &&
    raw.every((p) => typeof p === "object" && p !== null && (p as Body)["type"] === "text" && typeof (p as Body)["text"] === "string")
  ) {
    return raw.map((p) => (p as { text: string }).text).join("");
  }
  const media = Array.isArray(raw) ? raw.find((p) => MEDIA_PARTS.has((p as Body | null)?.["type"] as string)) : undefined;
  if (media) {
    throw invalid(
      `messages[${index}].content has a part of type ${(media as Body)["type"]}: gemma-ts runs the text model only, images and ` +
        "audio are not supported yet",
      `messages[${index}].content`,
    );
  }
  throw invalid(`messages[${index}].content must be a string or a list of text parts`, `messages[${index}].content`);
}

/** The conversation, with tool calls and tool results turned into turns the chat template renders (tools.ts). */
function readMessages(body: Body, tools: ToolRequest | null): ChatMessage[] {
  const raw = body["messages"];
  if (!Array.isArray(raw) || raw.length === 0) throw invalid("'messages' must be a non-empty list", "messages");
  const messages = raw.map((m, i): ToolChatMessage => {
    if (typeof m !== "object" || m === null) throw invalid(`messages[${i}] must be an object`, `messages[${i}]`);
    const message = m as Body;
    const role = message["role"];
    if (role !== "system" && role !== "user" && role !== "assistant" && role !== "developer" && role !== "tool") {
      throw invalid(
        `messages[${i}].role ${JSON.stringify(role)} is not supported (use system, user, assistant or tool)`,
        `messages[${i}].role`,
      );
    }
    if (role === "tool") {
      const id = message["tool_call_id"];
      if (typeof id !== "string" || id === "")
        throw invalid(`messages[${i}].tool_call_id must be the id of the call it answers`, `messages[${i}]`);
      return { role, content: readContent(message["content"], i), toolCallId: id };
    }
    if (role === "assistant" && message["tool_calls"] !== undefined && message["tool_calls"] !== null) {
      const content = message["content"] === null || message["content"] === undefined ? "" : readContent(message["content"], i);
      return { role, content, toolCalls: readToolCalls(message["tool_calls"], i) };
    }
    // "developer" is OpenAI's newer name for the system role.
    return { role: role === "developer" ? "system" : role, content: readContent(message["content"], i) };
  });
  return toolMessages(messages, tools);
}

/** An assistant turn's earlier calls, as the client sends them back. */
function readToolCalls(raw: unknown, i: number): ToolCall[] {
  const param = `messages[${i}].tool_calls`;
  if (!Array.isArray(raw) || raw.length === 0) throw invalid(`${param} must be a non-empty list`, param);
  return raw.map((c, j) => {
    const fn = (c as Body | null)?.["function"] as Body | undefined;
    const args = fn?.["arguments"];
    if (typeof fn?.["name"] !== "string" || typeof args !== "string")
      throw invalid(`${param}[${j}] must be {id, type: "function", function: {name, arguments}}`, param);
    try {
      JSON.parse(args);
    } catch {
      throw invalid(`${param}[${j}].function.arguments must be a JSON string`, param);
    }
    const id = (c as Body)["id"];
    return { id: typeof id === "string" ? id : `call_${j}`, type: "function", function: { name: fn["name"] as string, arguments: args } };
  });
}

export function parseCompletionRequest(body: unknown, kind: "chat" | "text"): CompletionRequest {
  if (typeof body !== "object" || body === null || Array.isArray(body)) throw invalid("the request body must be a JSON object");
  const b = body as Body;
  const model = b["model"];
  if (model !== undefined && model !== null && typeof model !== "string") throw invalid("'model' must be a string", "model");
  const n = optionalInt(b, "n", (v) => v >= 1, "a positive integer");
  if (n !== null && n !== 1) throw invalid("only n = 1 is supported", "n", "unsupported_value");

  let prompt = "";
  if (kind === "text") {
    const p = b["prompt"];
    if (Array.isArray(p) && p.length === 1 && typeof p[0] === "string") prompt = p[0];
    else if (typeof p === "string") prompt = p;
    else throw invalid("'prompt' must be a string (one prompt per request)", "prompt");
  }
  const maxTokens = optionalInt(
    b,
    kind === "chat" && b["max_completion_tokens"] !== undefined ? "max_completion_tokens" : "max_tokens",
    (v) => v >= 1,
    "a positive integer",
  );

  const streamOptions = b["stream_options"];
  if (streamOptions !== undefined && streamOptions !== null && (typeof streamOptions !== "object" || Array.isArray(streamOptions))) {
    throw invalid("'stream_options' must be an object", "stream_options");
  }
  const includeUsage = streamOptions ? optionalBoolean(streamOptions as Body, "include_usage") : false;

  let logprobs: number | null = null;
  if (kind === "chat") {
    if (optionalBoolean(b, "logprobs")) logprobs = optionalInt(b, "top_logprobs", (v) => v >= 0 && v <= 20, "an integer from 0 to 20") ?? 0;
    else if (b["top_logprobs"] !== undefined && b["top_logprobs"] !== null)
      throw invalid("'top_logprobs' needs 'logprobs': true", "top_logprobs");
  } else {
    logprobs = optionalInt(b, "logprobs", (v) => v >= 0 && v <= 5, "an integer from 0 to 5");
  }

  const seed = optionalInt(b, "seed", (v) => Number.isSafeInteger(v), "an integer");
  const tools = kind === "chat" ? readTools(b) : null;
  if (tools && b["response_format"] !== undefined && b["response_format"] !== null && tools.choice !== "none")
    throw invalid(
      "'response_format' and 'tools' cannot be combined: a reply is either decoded as a call or under the format",
      "response_format",
    );
  return {
    kind,
    model: (model as string | undefined) ?? null,
    messages: kind === "chat" ? readMessages(b, tools) : [],
    prompt,
    maxTokens,
    temperature: optionalNumber(b, "temperature", 1, (v) => v >= 0 && v <= 2, "a number from 0 to 2"),
    topP: optionalNumber(b, "top_p", 1, (v) => v > 0 && v <= 1, "a number in (0, 1]"),
    topK: optionalNumber(b, "top_k", 0, (v) => Number.isInteger(v) && v >= 0, "a non-negative integer"),
    minP: optionalNumber(b, "min_p", 0, (v) => v >= 0 && v <= 1, "a number from 0 to 1"),
    presencePenalty: optionalNumber(b, "presence_penalty", 0, (v) => v >= -2 && v <= 2, "a number from -2 to 2"),
    frequencyPenalty: optionalNumber(b, "frequency_penalty", 0, (v) => v >= -2 && v <= 2, "a number from -2 to 2"),
    seed: seed === null ? undefined : seed >>> 0,
    stop: readStop(b),
    stream: optionalBoolean(b, "stream"),
    includeUsage,
    logprobs,
    responseFormat: tools && tools.choice !== "none" ? toolResponseFormat(tools) : readResponseFormat(b),
    tools,
  };
}

/**
 * OpenAI's `response_format`: {type: "text"}, {type: "json_object"}, or {type: "json_schema",
 * json_schema: {name, schema, strict}}; and gemma-ts's {type: "grammar", grammar: "<EBNF>"}.
 */
function readResponseFormat(b: Body): ResponseFormat | null {
  const raw = b["response_format"];
  if (raw === undefined || raw === null) return null;
  if (typeof raw !== "object" || Array.isArray(raw)) throw invalid("'response_format' must be an object", "response_format");
  const f = raw as Body;
  let format: unknown = f;
  if (f["type"] === "json_schema") {
    const spec = f["json_schema"];
    if (typeof spec !== "object" || spec === null || Array.isArray(spec))
      throw invalid("'response_format.json_schema' must be an object with a name and a schema", "response_format.json_schema");
    const { name, schema, strict } = spec as Body;
    if (typeof name !== "string" || !/^[A-Za-z0-9_-]{1,64}$/.test(name))
      throw invalid("'response_format.json_schema.name' must be 1-64 letters, digits, '_' or '-'", "response_format.json_schema.name");
    if (strict !== undefined && strict !== null && typeof strict !== "boolean")
      throw invalid("'response_format.json_schema.strict' must be a boolean", "response_format.json_schema.strict");
    format = { type: "json_schema", schema: schema ?? {} };
  }
  try {
    const checked = checkResponseFormat(format);
    return checked.type === "text" ? null : checked;
  } catch (e) {
    if (e instanceof GenerationError) throw invalid(e.message.replace(/^responseFormat: /, "response_format: "), "response_format");
    throw e;
  }
}
