/**
 * Trained models on disk as Hugging Face checkpoints: config.json + model.safetensors (float32),
 * the tokenizer files copied alongside, so `loadModel(dir)` and transformers load them; plus the
 * optimizer moments and trainer state needed to resume (optimizer.safetensors, trainer_state.json).
 */
import { copyFile, mkdir, readFile, rename, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { configToHf, type GemmaConfig } from "../config.js";
import { loadConfig } from "../gemma.js";
import { CheckpointError } from "../errors.js";
import { openCheckpointFolder } from "../weights/checkpoint-folder.js";
import { widenRow } from "../weights/matrix-rows.js";
import { encodeSafetensors, type NamedTensor } from "../weights/safetensors-writer.js";
import { SafetensorsFile } from "../weights/safetensors.js";
import { NodeFileSource } from "../weights/node-file-source.js";
import { TrainableGemma, type ArrayKind } from "./model.js";
import type { Linear } from "./ops.js";
import type { AdamW } from "./optimizer.js";

export interface SaveOptions {
  /** A folder whose tokenizer.json / tokenizer_config.json / tokenizer.gguf are copied in, or a GGUF vocabulary file (copied as tokenizer.gguf). */
  tokenizerDir?: string;
  optimizer?: AdamW;
  /** Anything the trainer needs to resume (step, settings, losses so far). */
  state?: Record<string, unknown>;
}

/** Writes atomically per file (temp + rename), so an interrupted save never leaves a torn model. */
export async function saveTrainedModel(dir: string, model: TrainableGemma, options: SaveOptions = {}): Promise<void> {
  await mkdir(dir, { recursive: true });
  const tensors: NamedTensor[] = [...model.params].map(([name, p]) => ({ name, dtype: "f32", shape: model.shapes.get(name)!, data: Float32Array.from(p) }));
  await writeAtomic(join(dir, "model.safetensors"), encodeSafetensors(tensors));
  await writeAtomic(join(dir, "config.json"), `${JSON.stringify(configToHf(model.config), null, 2)}\n`);
  if (options.tokenizerDir?.endsWith(".gguf")) {
    await copyFile(options.tokenizerDir, join(dir, "tokenizer.gguf"));
  } else if (options.tokenizerDir) {
    for (const file of ["tokenizer.json", "tokenizer_config.json", "tokenizer.gguf"]) {
      if (await stat(join(options.tokenizerDir, file)).catch(() => null)) await copyFile(join(options.tokenizerDir, file), join(dir, file));
    }
  }
  if (options.optimizer) {
    const moments: NamedTensor[] = [];
    for (const [name, m] of options.optimizer.m) moments.push({ name: `m.${name}`, dtype: "f32", shape: [m.length], data: m });
    for (const [name, v] of options.optimizer.v) moments.push({ name: `v.${name}`, dtype: "f32", shape: [v.length], data: v });
    await writeAtomic(join(dir, "optimizer.safetensors"), encodeSafetensors(moments));
  }
  if (options.state) await writeAtomic(join(dir, "trainer_state.json"), `${JSON.stringify({ ...options.state, optimizerStep: options.optimizer?.step ?? 0 }, null, 2)}\n`);
}

async function writeAtomic(path: string, data: Uint8Array | string): Promise<void> {
  await writeFile(`${path}.tmp`, data);
  await rename(`${path}.tmp`, path);
}

/** A trainable model initialised from a Gemma 2 checkpoint folder (any stored float width). */
export async function loadTrainable(dir: string, kind: ArrayKind = "f32", linear?: Linear): Promise<TrainableGemma> {
  const config = await loadConfig(dir);
  if (config.family !== "gemma2") throw new CheckpointError(`${dir}: training needs a Gemma 2 checkpoint, found ${config.family}`, dir);
  const model = new TrainableGemma(config as GemmaConfig, kind, linear);
  const ckpt = await openCheckpointFolder(dir);
  try {
    for (const [name, shape] of model.shapes) {
      const location = ckpt.tensor(name);
      if (!location) throw new CheckpointError(`${dir}: missing tensor ${name}`, dir, name);
      const t = await location.file.readTensor(name);
      if (t.shape.join() !== shape.join()) throw new CheckpointError(`${dir}: tensor ${name} has shape [${t.shape}], expected [${shape}]`, dir, name);
      const row = new Float32Array(t.data.length);
      widenRow(row, t.data, t.dtype, 0, row.length);
      model.param(name).set(row);
    }
  } finally {
    await ckpt.close();
  }
  return model;
}

/** Restores optimizer moments and the trainer state saved by saveTrainedModel; null if absent. */
export async function loadTrainerState(dir: string, optimizer: AdamW): Promise<Record<string, unknown> | null> {
  const statePath = join(dir, "trainer_state.json");
  if (!(await stat(statePath).catch(() => null))) return null;
  const state = JSON.parse(await readFile(statePath, "utf8")) as Record<string, unknown>;
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
