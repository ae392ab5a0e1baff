/**
 * Loading a model in a browser: a GGUF file or a Hugging Face folder from ModelFiles, validated by
 * the same code as in Node (config rules, tensor shapes, tokenizer), onto the kernels given.
 */
import type { Kernels } from "../backend/kernels.js";
import { parseModelConfigJson } from "../model/families.js";
import { CheckpointError, TokenizerError } from "../errors.js";
import type { ModelConfig } from "../model/causal-lm.js";
import { assembleModel, type AssembleOptions, type GemmaModel } from "../gemma-model.js";
import { GgufCheckpoint } from "../model/gguf-checkpoint.js";
import { tokenizerFromGguf } from "../tokenizer/gguf-tokenizer.js";
import { tokenizerFromJson } from "../tokenizer/hf-codec.js";
import type { GemmaTokenizer } from "../tokenizer/tokenizer.js";
import { Checkpoint, shardNamesFromIndex, type TensorSource } from "../weights/checkpoint.js";
import { GgufFile, GgufMetadataReader } from "../weights/gguf.js";
import type { ModelFiles } from "./model-files.js";

export interface OpenedCheckpoint {
  checkpoint: TensorSource & { close(): Promise<void> };
  config: ModelConfig;
  tokenizer: GemmaTokenizer | null;
}

/** Opens (and validates the headers of) a checkpoint's files; reads no weights yet. */
export async function openModelFiles(files: ModelFiles): Promise<OpenedCheckpoint> {
  if (files.gguf) {
    const checkpoint = await GgufCheckpoint.fromSource(await files.source(files.gguf));
    return { checkpoint, config: checkpoint.config, tokenizer: checkpoint.tokenizer };
  }
  const configText = await files.text("config.json");
  if (configText === null)
    throw new CheckpointError(`${files.name}: no config.json (pick a Hugging Face checkpoint folder or a .gguf file)`, files.name);
  const config = parseModelConfigJson(configText, `${files.name}/config.json`);
  const indexText = await files.text("model.safetensors.index.json");
  const shards = indexText === null ? ["model.safetensors"] : shardNamesFromIndex(indexText, `${files.name}/model.safetensors.index.json`);
  const checkpoint = await Checkpoint.fromSources(
    files.name,
    shards.map((shard) => () => files.source(shard)),
  );
  try {
    return { checkpoint, config, tokenizer: await folderTokenizer(files) };
  } catch (e) {
    await checkpoint.close();
    throw e;
  }
}

/** tokenizer.json (+ tokenizer_config.json), else tokenizer.gguf, else none. */
async function folderTokenizer(files: ModelFiles): Promise<GemmaTokenizer | null> {
  const json = await files.text("tokenizer.json");
  if (json !== null) {
    const configText = await files.text("tokenizer_config.json");
    return tokenizerFromJson(
      parse(json, `${files.name}/tokenizer.json`),
      configText === null ? {} : parse(configText, `${files.name}/tokenizer_config.json`),
      `${files.name}/tokenizer.json`,
    );
  }
  const source = await files.optionalSource("tokenizer.gguf");
  if (!source) return null;
  try {
    const file = await GgufFile.open(source);
    return tokenizerFromGguf(new GgufMetadataReader(file.metadata, source.name), source.name);
  } finally {
    await source.close();
  }
}

function parse(text: string, name: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new TokenizerError(`${name}: not valid JSON (${(e as Error).message})`);
  }
}

/** Opens the files and loads the model onto the kernels (progress through options.onProgress). */
export async function loadModelFromFiles(files: ModelFiles, kernels: Kernels, options: AssembleOptions = {}): Promise<GemmaModel> {
  const { checkpoint, config, tokenizer } = await openModelFiles(files);
  try {
    return await assembleModel(checkpoint, config, tokenizer, kernels, options);
  } finally {
    await checkpoint.close();
  }
}
