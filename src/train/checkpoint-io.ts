/**
 * Trained models on disk as Hugging Face checkpoints: config.json + model.safetensors (float32),
 * the tokenizer files copied alongside, so `loadModel(dir)` and transformers load them; plus the
 * optimizer moments and trainer state needed to resume (optimizer.safetensors, trainer_state.json).
 */
import { copyFile, mkdir, readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { configToHf } from "../model/gemma/config.js";
import { openCheckpoint } from "../model/open-checkpoint.js";
import { CheckpointError } from "../errors.js";
import { GgufFile } from "../weights/gguf.js";
import { gguv, type GgufValue } from "../weights/gguf-values.js";
import { StringTable } from "../weights/string-table.js";
import { widenRow } from "../weights/matrix-rows.js";
import { encodeSafetensors, type NamedTensor } from "../weights/safetensors-writer.js";
import { SafetensorsFile } from "../weights/safetensors.js";
import { NodeFileSource } from "../weights/node-file-source.js";
import { TrainableGemma, type ArrayKind } from "./model.js";
import type { Linear } from "./ops.js";
import type { AdamW } from "./optimizer.js";

export interface SaveOptions {
  /**
   * A folder whose tokenizer.json / tokenizer_config.json / tokenizer.gguf are copied in, or a GGUF
   * vocabulary file (copied as tokenizer.gguf).
   */
  tokenizerDir?: string;
  optimizer?: AdamW;
  /** Anything the trainer needs to resume (step, settings, losses so far). */
  state?: Record<string, unknown>;
}

/** Where a save is assembled before its files move into place (see `saveTrainedModel`). */
const STAGING = ".saving";
const COMPLETE = "COMPLETE";

/**
 * Saves a checkpoint as one set: every file is written into `dir/.saving/`, a COMPLETE marker
 * follows, then the files are renamed into `dir`. A save cut short before the marker leaves the
 * previous checkpoint untouched (the staging folder is discarded); one cut short after it is
 * finished by the next `finishInterruptedSave`. Weights of step N never pair with an older
 * optimizer state.
 */
export async function saveTrainedModel(dir: string, model: TrainableGemma, options: SaveOptions = {}): Promise<void> {
  await mkdir(dir, { recursive: true });
  const staging = join(dir, STAGING);
  await rm(staging, { recursive: true, force: true });
  await mkdir(staging);
  const tensors: NamedTensor[] = [...model.params].map(([name, p]) => ({
    name,
    dtype: "f32",
    shape: model.shapes.get(name)!,
    data: Float32Array.from(p),
  }));
  await writeFile(join(staging, "model.safetensors"), encodeSafetensors(tensors));
  await writeFile(join(staging, "config.json"), `${JSON.stringify(configToHf(model.config), null, 2)}\n`);
  if (options.tokenizerDir?.endsWith(".gguf")) {
    await writeFile(join(staging, "tokenizer.gguf"), await vocabularyOnlyGguf(options.tokenizerDir));
  } else if (options.tokenizerDir) {
    for (const file of ["tokenizer.json", "tokenizer_config.json", "tokenizer.gguf"]) {
      if (await stat(join(options.tokenizerDir, file)).catch(() => null))
        await copyFile(join(options.tokenizerDir, file), join(staging, file));
    }
  }
  if (options.optimizer) {
    const moments: NamedTensor[] = [];
    for (const [name, m] of options.optimizer.m) moments.push({ name: `m.${name}`, dtype: "f32", shape: [m.length], data: m });
    for (const [name, v] of options.optimizer.v) moments.push({ name: `v.${name}`, dtype: "f32", shape: [v.length], data: v });
    await writeFile(join(staging, "optimizer.safetensors"), encodeSafetensors(moments));
  }
  if (options.state)
    await writeFile(
      join(staging, "trainer_state.json"),
      `${JSON.stringify({ ...options.state, optimizerStep: options.optimizer?.step ?? 0 }, null, 2)}\n`,
    );
  await writeFile(join(staging, COMPLETE), "");
  await finishInterruptedSave(dir);
}

/**
 * Completes a save that was cut short: moves a complete staging folder's files into place, or
 * discards an incomplete one. Call before reading a checkpoint that may have been interrupted.
 */
export async function finishInterruptedSave(dir: string): Promise<void> {
  const staging = join(dir, STAGING);
  const files = await readdir(staging).catch(() => null);
  if (files === null) return;
  if (files.includes(COMPLETE)) {
    for (const file of files) if (file !== COMPLETE) await rename(join(staging, file), join(dir, file));
  }
  await rm(staging, { recursive: true, force: true });
}

/** A GGUF vocabulary file's tokenizer alone (metadata, no tensors): a whole model's weights must not be copied as "the tokenizer". */
async function vocabularyOnlyGguf(path: string): Promise<Uint8Array> {
  const source = await NodeFileSource.open(path).catch((e: NodeJS.ErrnoException) => {
    throw new CheckpointError(`${path}: cannot open (${e.code ?? e.message})`, path);
  });
  try {
    const file = await GgufFile.open(source);
    if (file.tensors.size === 0) return readFile(path);
    // The serializer's package loads only here, not with every command that can train.
    const { encodeGguf } = await import("../weights/gguf-writer.js");
    return encodeGguf(tokenizerMetadata(file), []);
  } finally {
    await source.close();
  }
}

/**
 * A trainable model initialised from a Gemma 2 checkpoint: a folder (any stored float width) or a
 * GGUF file (quantized blocks are dequantized; norm weights stored as gains 1 + w become w again).
 */
export async function loadTrainable(path: string, kind: ArrayKind = "f32", linear?: Linear): Promise<TrainableGemma> {
  await finishInterruptedSave(path).catch(() => {});
  const { checkpoint, config } = await openCheckpoint(path);
  try {
    if (config.family !== "gemma2") throw new CheckpointError(`${path}: training needs a Gemma 2 checkpoint, found ${config.family}`, path);
    const model = new TrainableGemma(config, kind, linear);
    for (const [name, shape] of model.shapes) {
      const location = checkpoint.tensor(name);
      if (!location) throw new CheckpointError(`${path}: missing tensor ${name}`, path, name);
      const t = await location.file.readTensor(name);
      if (t.shape.join() !== shape.join())
        throw new CheckpointError(`${path}: tensor ${name} has shape [${t.shape}], expected [${shape}]`, path, name);
      const cols = t.shape.at(-1)!;
      const rows = t.shape.length === 2 ? t.shape[0]! : 1;
      const values = new Float32Array(rows * cols);
      for (let r = 0; r < rows; r++) widenRow(values.subarray(r * cols, (r + 1) * cols), t.data, t.dtype, r, cols);
      if (t.storedAsGain) for (let i = 0; i < values.length; i++) values[i] = values[i]! - 1;
      model.param(name).set(values);
    }
    return model;
  } finally {
    await checkpoint.close();
  }
}

/** Restores optimizer moments and the trainer state saved by saveTrainedModel; null if absent. */
export async function loadTrainerState(dir: string, optimizer: AdamW): Promise<Record<string, unknown> | null> {
  await finishInterruptedSave(dir);
  const statePath = join(dir, "trainer_state.json");
  if (!(await stat(statePath).catch(() => null))) return null;
  let state: Record<string, unknown>;
  try {
    state = JSON.parse(await readFile(statePath, "utf8")) as Record<string, unknown>;
    if (typeof state !== "object" || state === null || !Number.isInteger(state["step"])) throw new Error("no integer step");
  } catch (e) {
    throw new CheckpointError(
      `${statePath}: not a valid trainer state (${(e as Error).message}); the run cannot be resumed from it`,
      statePath,
    );
  }
  const file = await SafetensorsFile.open(await NodeFileSource.open(join(dir, "optimizer.safetensors")));
  try {
    for (const [name, m] of optimizer.m) {
      m.set((await file.readTensor(`m.${name}`)).data as Float32Array);
      optimizer.v.get(name)!.set((await file.readTensor(`v.${name}`)).data as Float32Array);
    }
  } finally {
    await file.close();
  }
  optimizer.step = Number(state["optimizerStep"] ?? 0);
  return state;
}

/** The tokenizer.* keys of a GGUF file, typed for writing again (GGUF stores ids as u32, scores f32, types i32). */
function tokenizerMetadata(file: GgufFile): Record<string, GgufValue> {
  const out: Record<string, GgufValue> = { "general.architecture": gguv.str("gemma2"), "general.name": gguv.str("vocabulary") };
  for (const [key, value] of Object.entries(file.metadata)) {
    if (!key.startsWith("tokenizer.")) continue;
    if (typeof value === "string") out[key] = gguv.str(value);
    else if (typeof value === "boolean") out[key] = gguv.bool(value);
    else if (typeof value === "number") out[key] = Number.isInteger(value) && value >= 0 ? gguv.u32(value) : gguv.f32(value);
    else if (value instanceof StringTable) out[key] = gguv.strings(value.toArray());
    else if (Array.isArray(value) && value.every((v) => typeof v === "string")) out[key] = gguv.strings(value as string[]);
    else if (Array.isArray(value) && key.endsWith("token_type")) out[key] = gguv.i32s((value as unknown[]).map(Number));
    else if (Array.isArray(value)) out[key] = gguv.f32s((value as unknown[]).map(Number));
  }
  return out;
}
