/**
 * Incremental detokenizer: turns one token at a time into text without ever emitting half of a
 * multi-byte character (byte-fallback tokens such as <0xF0> arrive one byte at a time).
 */
import type { GemmaTokenizer } from "./tokenizer.js";

/** UTF-8 needs at most 4 bytes; past that a trailing U+FFFD is a real replacement character. */
const MAX_PENDING = 4;

export class StreamDecoder {
  private pending: number[] = [];

  constructor(private readonly tokenizer: GemmaTokenizer) {}

  /** Text that is now complete; "" while a character is still being assembled. */
  push(id: number): string {
    this.pending.push(id);
    const text = this.tokenizer.decode(this.pending);
    if (text.endsWith("\uFFFD") && this.pending.length < MAX_PENDING) return "";
    this.pending = [];
    return text;
  }
}
