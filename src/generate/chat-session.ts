/**
 * A multi-turn conversation that keeps its KV cache between turns: each turn renders the whole
 * conversation, but only the tokens after the shared prefix are computed.
 */
import { encodeChat, type ChatMessage } from "../tokenizer/chat-template.js";
import type { GemmaTokenizer } from "../tokenizer/tokenizer.js";
import { Generation, type GenerateOptions, type GenerationContext } from "./generation.js";
import type { Sequence } from "./sequence.js";

export class ChatSession {
  readonly messages: ChatMessage[] = [];

  constructor(
    private readonly tokenizer: GemmaTokenizer,
    private readonly sequence: Sequence,
    private readonly context: Omit<GenerationContext, "sequence">,
    system?: string,
  ) {
    if (system) this.messages.push({ role: "system", content: system });
  }

  /**
   * Adds a user turn and returns the model's streamed reply; the reply joins the history when the
   * stream ends. A failed or aborted turn leaves the history as it was.
   */
  send(content: string, options: GenerateOptions = {}): Generation {
    const turn: ChatMessage = { role: "user", content };
    const ids = encodeChat(this.tokenizer, [...this.messages, turn]);
    return new Generation({ ...this.context, sequence: this.sequence }, ids, options, (done) => {
      if (done.finishReason !== "abort") this.messages.push(turn, { role: "assistant", content: done.text });
    });
  }

  /** Tokens held in the KV cache now. */
  get cachedTokens(): number {
    return this.sequence.ids.length;
  }
}
