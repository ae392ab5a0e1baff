/**
 * Reads a tokenizer from disk (Node adapter): a checkpoint folder's tokenizer.json (+
 * tokenizer_config.json), or a GGUF file's vocabulary (`tokenizer.gguf` in a folder, or any .gguf
 * path; a vocabulary-only GGUF with no tensors is enough).
 */
import { readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { TokenizerError } from "../errors.js";
import { NodeFileSource } from "../weights/node-file-source.js";
import { GgufFile, GgufMetadataReader } from "../weights/gguf.js";
import { tokenizerFromGguf } from "./gguf-tokenizer.js";
import { tokenizerFromJson } from "./hf-codec.js";
import type { GemmaTokenizer } from "./tokenizer.js";

/** The vocabulary file a checkpoint folder's tokenizer is read from, if any. */
export async function tokenizerFile(path: string): Promise<string | null> {
  if (path.endsWith(".gguf")) return path;
  for (const name of ["tokenizer.json", "tokenizer.gguf"]) {
    if (await stat(join(path, name)).catch(() => null)) return join(path, name);
  }
  return null;
}

/** True when the folder holds a tokenizer.json or tokenizer.gguf (or the path is a GGUF file). */
export async function hasTokenizer(path: string): Promise<boolean> {
  return (await tokenizerFile(path)) !== null;
}

export async function loadTokenizer(path: string): Promise<GemmaTokenizer> {
  const file = (await tokenizerFile(path)) ?? join(path, "tokenizer.json");
  if (file.endsWith(".gguf")) return loadGgufTokenizer(file);
  const tokenizerJson = await readJson(file, true);
  const tokenizerConfig = (await readJson(join(path, "tokenizer_config.json"), false)) ?? {};
  return tokenizerFromJson(tokenizerJson, tokenizerConfig, file);
}

async function loadGgufTokenizer(path: string): Promise<GemmaTokenizer> {
  const source = await NodeFileSource.open(path).catch((e: NodeJS.ErrnoException) => {
    throw new TokenizerError(`${path}: cannot read (${e.code ?? e.message})`);
  });
  try {
    const file = await GgufFile.open(source);
    const tokenizer = tokenizerFromGguf(new GgufMetadataReader(file.metadata, path), path);
    if (!tokenizer) throw new TokenizerError(`${path}: this GGUF file carries no vocabulary (tokenizer.ggml.model)`);
    return tokenizer;
  } finally {
    await source.close();
  }
}

async function readJson(path: string, required: boolean): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (e) {
    if (!required && (e as NodeJS.ErrnoException).code === "ENOENT") return null;
    const hint = path.endsWith("tokenizer.json")
      ? " (gemma-ts needs the Hugging Face tokenizer.json or a GGUF vocabulary; tokenizer.model alone is not enough)"
      : "";
    throw new TokenizerError(`${path}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})${hint}`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new TokenizerError(`${path}: not valid JSON (${(e as Error).message})`);
  }
}
