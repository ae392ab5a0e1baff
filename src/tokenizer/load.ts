/** Reads tokenizer.json (+ tokenizer_config.json) from a checkpoint folder. Node adapter. */
import { readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { TokenizerError } from "../errors.js";
import { tokenizerFromJson } from "./hf-codec.js";
import type { GemmaTokenizer } from "./tokenizer.js";

/** True when the folder holds a tokenizer.json. */
export async function hasTokenizer(dir: string): Promise<boolean> {
  return (await stat(join(dir, "tokenizer.json")).catch(() => null)) !== null;
}

export async function loadTokenizer(dir: string): Promise<GemmaTokenizer> {
  const jsonPath = join(dir, "tokenizer.json");
  const configPath = join(dir, "tokenizer_config.json");
  const tokenizerJson = await readJson(jsonPath, true);
  const tokenizerConfig = (await readJson(configPath, false)) ?? {};
  return tokenizerFromJson(tokenizerJson, tokenizerConfig, jsonPath);
}

async function readJson(path: string, required: boolean): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (e) {
    if (!required && (e as NodeJS.ErrnoException).code === "ENOENT") return null;
    const hint = path.endsWith("tokenizer.json") ? " (gemma-ts needs the Hugging Face tokenizer.json; tokenizer.model alone is not enough)" : "";
    throw new TokenizerError(`${path}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})${hint}`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new TokenizerError(`${path}: not valid JSON (${(e as Error).message})`);
  }
}
