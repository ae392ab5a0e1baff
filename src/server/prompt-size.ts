/**
 * Refuses prompts that cannot fit the context before the exact tokenization, which is synchronous
 * and slow on huge texts (a 4 MiB prompt took 26 s and blocked every other client). A text of n
 * characters needs at least n / (longest piece) tokens, so a text that is too long by that measure
 * is refused at once; a long one is counted chunk by chunk, yielding to the event loop in between.
 */
import type { GemmaTokenizer } from "../tokenizer/tokenizer.js";
import { invalid } from "./api-error.js";

/** Characters tokenized between yields (about 40 ms on one core). */
const CHUNK_CHARS = 8192;

const yieldToEventLoop = () => new Promise<void>((resolve) => setTimeout(resolve, 0));

/**
 * Throws a 400 `context_length_exceeded` when `texts` (the user's text of one request) cannot fit
 * in `context` tokens. Chunked counts may differ from the exact count by a token or two per chunk
 * boundary, so each boundary gets that margin; the exact check happens after tokenizing.
 */
export async function refuseOversizedPrompt(
  tokenizer: GemmaTokenizer,
  texts: readonly string[],
  context: number,
  field: string,
): Promise<void> {
  const chars = texts.reduce((n, t) => n + t.length, 0);
  const atLeast = Math.ceil(chars / tokenizer.maxPieceChars);
  if (atLeast >= context) {
    throw invalid(
      `the prompt has ${chars.toLocaleString("en")} characters, at least ${atLeast.toLocaleString("en")} tokens, but the model's ` +
        `context window is ${context} tokens`,
      field,
      "context_length_exceeded",
    );
  }
  if (chars <= CHUNK_CHARS) return;
  let tokens = 0;
  let boundaries = 0;
  for (const text of texts) {
    for (let at = 0; at < text.length; at += CHUNK_CHARS) {
      await yieldToEventLoop();
      tokens += tokenizer.encode(text.slice(at, at + CHUNK_CHARS), { addBos: false, parseControlTokens: false }).length;
      boundaries++;
      if (tokens > context + 2 * boundaries) {
        throw invalid(`the prompt has more than ${context} tokens, the model's context window`, field, "context_length_exceeded");
      }
    }
  }
}
