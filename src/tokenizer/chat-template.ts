/**
 * Chat formatting (GEMMA2.md §5): renders the checkpoint's Jinja chat template with
 * @huggingface/jinja and tokenizes it so that message text can never become control tokens.
 */
import { TokenizerError } from "../errors.js";
import { limitsFor, renderTemplate, TemplateLimitError } from "./template-limits.js";
import type { GemmaTokenizer } from "./tokenizer.js";

export type ChatRole = "system" | "user" | "assistant";

export interface ChatMessage {
  /** "model" is accepted as Gemma's name for "assistant". */
  role: ChatRole | "model";
  content: string;
}

/**
 * Gemma's own template, used when tokenizer_config.json has none. Unlike the published one it folds
 * a system message into the first user turn instead of raising (the caller does that fold).
 */
export const GEMMA_CHAT_TEMPLATE =
  "{{ bos_token }}{% for message in messages %}" +
  "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}" +
  "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}" +
  "{% if message['role'] == 'assistant' %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}{% endif %}" +
  "{{ '<start_of_turn>' + role + '\n' + message['content'] | trim + '<end_of_turn>\n' }}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<start_of_turn>model\n' }}{% endif %}";

export interface EncodeChatOptions {
  /** End with `<start_of_turn>model\n` so the model answers (default true). */
  addGenerationPrompt?: boolean;
  /** A template to use instead of the tokenizer's. */
  template?: string;
}

/** Checks roles, maps "model" → "assistant" and folds a leading system message into the first user turn. */
export function normalizeMessages(messages: readonly ChatMessage[]): { role: "user" | "assistant"; content: string }[] {
  if (!Array.isArray(messages) || messages.length === 0) throw new TokenizerError("a chat needs at least one message");
  const out: { role: "user" | "assistant"; content: string }[] = [];
  let system: string | null = null;
  messages.forEach((m, i) => {
    if (typeof m !== "object" || m === null || typeof m.content !== "string") {
      throw new TokenizerError(`message ${i}: expected {role, content} with string content`);
    }
    if (m.role === "system") {
      if (i !== 0) throw new TokenizerError(`message ${i}: a system message is only allowed first`);
      system = m.content;
    } else if (m.role === "user" || m.role === "assistant" || m.role === "model") {
      out.push({ role: m.role === "model" ? "assistant" : m.role, content: m.content });
    } else {
      throw new TokenizerError(
        `message ${i}: unknown role ${JSON.stringify((m as { role: unknown }).role)} (expected system, user, assistant or model)`,
      );
    }
  });
  if (system !== null) {
    if (out[0]?.role !== "user") throw new TokenizerError("a system message must be followed by a user message");
    out[0] = { role: "user", content: `${system}\n\n${out[0].content}` };
  }
  return out;
}

/** Renders the conversation to text (control tokens as their strings). */
export function renderChat(tokenizer: GemmaTokenizer, messages: readonly ChatMessage[], options: EncodeChatOptions = {}): string {
  return render(tokenizer, normalizeMessages(messages), options);
}

/**
 * Token ids of the rendered conversation. The template is rendered with a placeholder in place of
 * each message; template text is tokenized with control tokens, message text strictly as text.
 */
export function encodeChat(tokenizer: GemmaTokenizer, messages: readonly ChatMessage[], options: EncodeChatOptions = {}): number[] {
  const normalized = normalizeMessages(messages);
  // Placeholders padded with spaces reveal whether the template trims the content.
  const placeholders = normalized.map((_, i) => ` \uE000${i}\uE001 `);
  const rendered = render(
    tokenizer,
    normalized.map((m, i) => ({ ...m, content: placeholders[i]! })),
    options,
  );
  const ids: number[] = [];
  let rest = rendered;
  for (const [i, m] of normalized.entries()) {
    const marker = `\uE000${i}\uE001`;
    const at = rest.indexOf(marker);
    if (at < 0) throw new TokenizerError(`the chat template does not output message ${i}'s content`);
    const padded = rest.slice(at - 1, at + marker.length + 1) === ` ${marker} `;
    const before = padded ? rest.slice(0, at - 1) : rest.slice(0, at);
    ids.push(...tokenizer.encode(before, { addBos: false }));
    ids.push(...tokenizer.encode(padded ? m.content : m.content.trim(), { addBos: false, parseControlTokens: false }));
    rest = rest.slice(at + marker.length + (padded ? 1 : 0));
  }
  ids.push(...tokenizer.encode(rest, { addBos: false }));
  // BOS exactly once at position 0, whether or not the template wrote it.
  if (ids[0] !== tokenizer.bosTokenId) ids.unshift(tokenizer.bosTokenId);
  return ids;
}

function render(tokenizer: GemmaTokenizer, messages: { role: string; content: string }[], options: EncodeChatOptions): string {
  const source = options.template ?? tokenizer.chatTemplate ?? GEMMA_CHAT_TEMPLATE;
  const inputChars = messages.reduce((n, m) => n + m.content.length, 0);
  try {
    return renderTemplate(
      source,
      {
        messages,
        add_generation_prompt: options.addGenerationPrompt ?? true,
        bos_token: tokenizer.idToToken(tokenizer.bosTokenId) ?? "<bos>",
        eos_token: tokenizer.idToToken(tokenizer.eosTokenId) ?? "<eos>",
      },
      limitsFor(inputChars),
    );
  } catch (e) {
    if (e instanceof TemplateLimitError) throw e;
    // Template errors include its own raise_exception('Conversation roles must alternate ...').
    throw new TokenizerError(`chat template failed: ${(e as Error).message}`);
  }
}
