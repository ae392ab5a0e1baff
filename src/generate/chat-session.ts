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
    const ids = this.fitToContext(turn, options.maxTokens);
    return new Generation({ ...this.context, sequence: this.sequence }, ids, options, (done) => {
      if (done.finishReason !== "abort") this.messages.push(turn, { role: "assistant", content: done.text });
    });
  }

  /**
   * Completed exchanges (a user turn and its reply) dropped from the start of the conversation by
   * the last `send` so that it fits the context; the system message is always kept.
   */
  droppedTurns = 0;

  /**
   * The conversation's ids with room left for a reply (up to `maxTokens`, at most a quarter of the
   * context): while it does not fit, the oldest exchange is dropped. A turn that cannot fit even
   * alone fails in Generation with the prompt's length.
   */
  private fitToContext(turn: ChatMessage, maxTokens = 256): number[] {
    const { maxPositions } = this.context;
    const reserve = Math.max(1, Math.min(maxTokens, Math.floor(maxPositions / 4)));
    this.droppedTurns = 0;
    for (;;) {
      const ids = encodeChat(this.tokenizer, [...this.messages, turn]);
      const first = this.messages[0]?.role === "system" ? 1 : 0;
      if (ids.length + reserve <= maxPositions || this.messages.length - first < 2) return ids;
      this.messages.splice(first, 2);
      this.droppedTurns++;
    }
  }

  /** Tokens held in the KV cache now. */
  get cachedTokens(): number {
    return this.sequence.ids.length;
  }
}
