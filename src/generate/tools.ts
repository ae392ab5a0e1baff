/**
 * Tool (function) calling on Gemma, whose Gemma 1-3 chat templates define no tool format:
 * the tools are described in a documented instruction folded into the system turn, the model's
 * turn is decoded under a grammar that allows plain text or a call (`{"tool_calls": [...]}`, with
 * each function's `parameters` schema enforced), and the call is returned as OpenAI's `tool_calls`.
 * `tool` result messages go back to the model as a user turn naming the call they answer.
 */
import type { ChatMessage } from "../tokenizer/chat-template.js";
import type { JsonSchema, ResponseFormat } from "./response-format.js";

export interface ToolSpec {
  name: string;
  description: string;
  parameters: JsonSchema;
}

export type ToolChoice = "auto" | "none" | "required" | { name: string };

/** The functions offered to the model, how it must use them, and whether it may call several at once. */
export interface ToolRequest {
  tools: ToolSpec[];
  choice: ToolChoice;
  /** false: at most one call per reply (`parallel_tool_calls: false`). */
  parallel: boolean;
}

export interface ToolCall {
  id: string;
  type: "function";
  function: { name: string; arguments: string };
}

/** What opens a call in the model's reply: free text before it, the calls' JSON after. */
export const TOOL_CALL_BEGIN = '{"tool_calls": ';

/** The instruction that offers the tools, in the system turn (documented in README's server section). */
export function toolInstruction(t: ToolRequest): string {
  const list = t.tools.map((tool) => ({ name: tool.name, description: tool.description, parameters: tool.parameters }));
  const must =
    t.choice === "required"
      ? "You must call at least one of them."
      : typeof t.choice === "object"
        ? `You must call ${t.choice.name}.`
        : "Call one only when it helps; otherwise answer in plain text.";
  return `Functions you can call: ${JSON.stringify(list)}\n${must} To call, reply ${TOOL_CALL_BEGIN}[{"name": ..., "arguments": {...}}]}`;
}

/** The schema of a reply's calls: a list of {name, arguments} with each function's parameters enforced. */
function callsSchema(t: ToolRequest): JsonSchema {
  const offered = typeof t.choice === "object" ? t.tools.filter((tool) => tool.name === (t.choice as { name: string }).name) : t.tools;
  return {
    type: "array",
    minItems: 1,
    ...(t.parallel ? {} : { maxItems: 1 }),
    items: {
      anyOf: offered.map((tool) => ({
        type: "object",
        properties: { name: { const: tool.name }, arguments: tool.parameters },
        required: ["name", "arguments"],
      })),
    },
  };
}

/** The grammar the reply is decoded under: text or a call (auto), a call only (required, named), none (none). */
export function toolResponseFormat(t: ToolRequest): ResponseFormat | null {
  if (t.choice === "none") return null;
  const calls = callsSchema(t);
  if (t.choice === "auto") return { type: "text_or_json", begin: TOOL_CALL_BEGIN, schema: calls, end: "}" };
  return { type: "json_schema", schema: { type: "object", properties: { tool_calls: calls }, required: ["tool_calls"] } };
}

/**
 * Chat messages as Gemma's template takes them: the tool instruction joins the system turn, an
 * assistant's calls become its reply text, `tool` results one user turn (with a user message that
 * follows them: the templates require user and model turns to alternate).
 */
export function toolMessages(messages: readonly ToolChatMessage[], tools: ToolRequest | null): ChatMessage[] {
  const out: ChatMessage[] = [];
  // Tool results become a user turn; the next tool result or user message joins it.
  let resultsTurn: ChatMessage | null = null;
  const push = (role: ChatMessage["role"], content: string, isResult = false) => {
    if (resultsTurn && role === "user") resultsTurn.content += `\n\n${content}`;
    else {
      const turn = { role, content };
      out.push(turn);
      resultsTurn = isResult ? turn : null;
      return;
    }
    if (!isResult) resultsTurn = null;
  };
  const offered = tools && tools.choice !== "none" ? toolInstruction(tools) : null;
  if (offered) {
    const system = messages.find((m) => m.role === "system");
    push("system", system ? `${system.content}\n\n${offered}` : offered);
  }
  for (const m of messages) {
    if (m.role === "system") {
      if (!offered) push("system", m.content);
    } else if (m.role === "tool") {
      push("user", `Result of call ${m.toolCallId}:\n${m.content}`, true);
    } else if (m.role === "assistant" && m.toolCalls) {
      const calls = m.toolCalls.map((c) => ({ name: c.function.name, arguments: JSON.parse(c.function.arguments) as unknown }));
      push("assistant", `${m.content ? `${m.content} ` : ""}${TOOL_CALL_BEGIN}${JSON.stringify(calls)}}`);
    } else {
      push(m.role, m.content);
    }
  }
  return out;
}

/** A conversation message with what tool calling adds: a `tool` result naming its call, an assistant turn's calls. */
export interface ToolChatMessage {
  role: "system" | "user" | "assistant" | "tool";
  content: string;
  toolCallId?: string;
  toolCalls?: ToolCall[];
}

/** A reply split into its text and its calls (null when it made none, or when they were cut short). */
export function splitToolCalls(text: string): { content: string | null; calls: ToolCall[] | null } {
  const at = text.indexOf(TOOL_CALL_BEGIN);
  if (at < 0) return { content: text, calls: null };
  let parsed: unknown;
  try {
    parsed = JSON.parse(text.slice(at));
  } catch {
    return { content: text, calls: null }; // cut short by max_tokens: the text as it is
  }
  const list = (parsed as { tool_calls?: { name: string; arguments: unknown }[] }).tool_calls ?? [];
  const calls = list.map((c) => ({
    id: `call_${crypto.randomUUID().replaceAll("-", "").slice(0, 24)}`,
    type: "function" as const,
    function: { name: c.name, arguments: JSON.stringify(c.arguments) },
  }));
  const before = text.slice(0, at).trim();
  return { content: before === "" ? null : before, calls };
}

/**
 * For streams: passes text through until the call begins, holding back any tail that could be the
 * start of TOOL_CALL_BEGIN, so a client never sees half of the call as content.
 */
export class ToolCallHoldback {
  private held = "";
  private inCall = false;
  /** Everything seen (the call included), for splitToolCalls at the end. */
  text = "";

  push(piece: string): string {
    this.text += piece;
    if (this.inCall) return "";
    this.held += piece;
    const at = this.held.indexOf(TOOL_CALL_BEGIN);
    if (at >= 0) {
      this.inCall = true;
      const out = this.held.slice(0, at);
      this.held = "";
      return out;
    }
    let keep = 0;
    for (let n = Math.min(TOOL_CALL_BEGIN.length - 1, this.held.length); n > 0; n--) {
      if (TOOL_CALL_BEGIN.startsWith(this.held.slice(-n))) {
        keep = n;
        break;
      }
    }
    const out = this.held.slice(0, this.held.length - keep);
    this.held = this.held.slice(this.held.length - keep);
    return out;
  }

  /** Text held at the end that turned out not to be a call. */
  flush(): string {
    const out = this.inCall ? "" : this.held;
    this.held = "";
    return out;
  }
}
