/**
 * A checkpoint on disk (Node adapter): a Hugging Face folder (config.json, safetensors, tokenizer
 * files) or a GGUF file, opened as tensors, config and tokenizer without reading any weights.
 */
import { readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { CheckpointError, ConfigError } from "../errors.js";
import { hasTokenizer, loadTokenizer } from "../tokenizer/load.js";
import type { GemmaTokenizer } from "../tokenizer/tokenizer.js";
import type { TensorSource } from "../weights/checkpoint.js";
import { openCheckpointFolder } from "../weights/checkpoint-folder.js";
import { NodeFileSource } from "../weights/node-file-source.js";
import type { ModelConfig } from "./causal-lm.js";
import { parseModelConfigJson } from "./families.js";
import { GgufCheckpoint } from "./gguf-checkpoint.js";

/** Reads and validates `dir/config.json`. */
export async function loadConfig(dir: string): Promise<ModelConfig> {
  const path = join(dir, "config.json");
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (e) {
    throw new ConfigError(`${path}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  return parseModelConfigJson(text, path);
}

/** A checkpoint's tensors, config and tokenizer: a GGUF file, or a Hugging Face folder. */
export async function openCheckpoint(
  path: string,
): Promise<{ checkpoint: TensorSource & { close(): Promise<void> }; config: ModelConfig; tokenizer: GemmaTokenizer | null }> {
  if (path.endsWith(".gguf") && (await stat(path).catch(() => null))?.isFile()) {
    const source = await NodeFileSource.open(path).catch((e: NodeJS.ErrnoException) => {
      throw new CheckpointError(`${path}: cannot open (${e.code ?? e.message})`, path);
    });
    const checkpoint = await GgufCheckpoint.fromSource(source);
    return { checkpoint, config: checkpoint.config, tokenizer: checkpoint.tokenizer };
  }
  const checkpoint = await openCheckpointFolder(path);
  try {
    const config = await loadConfig(checkpoint.dir);
    const tokenizer = (await hasTokenizer(checkpoint.dir)) ? await loadTokenizer(checkpoint.dir) : null;
    return { checkpoint, config, tokenizer };
  } catch (e) {
    await checkpoint.close();
    throw e;
  }
}
