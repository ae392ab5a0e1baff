/** Reads a PEFT LoRA adapter folder (adapter_config.json + adapter_model.safetensors) from disk. */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { CheckpointError } from "../errors.js";
import { NodeFileSource } from "../weights/node-file-source.js";
import { widenRow } from "../weights/matrix-rows.js";
import { SafetensorsFile } from "../weights/safetensors.js";
import type { LoraDelta } from "./lora-adapter.js";

/** Reads a PEFT LoRA adapter folder: weight name → its update. */
export async function readLoraAdapter(dir: string): Promise<Map<string, LoraDelta>> {
  const configPath = join(dir, "adapter_config.json");
  let config: { peft_type?: unknown; r?: unknown; lora_alpha?: unknown; use_dora?: unknown; use_rslora?: unknown };
  try {
    config = JSON.parse(await readFile(configPath, "utf8")) as typeof config;
  } catch (e) {
    throw new CheckpointError(`${configPath}: cannot read a PEFT adapter config (${(e as Error).message})`, configPath);
  }
  if (config.peft_type !== "LORA")
    throw new CheckpointError(`${configPath}: peft_type ${JSON.stringify(config.peft_type)} is not supported (only "LORA")`, configPath);
  if (config.use_dora) throw new CheckpointError(`${configPath}: DoRA adapters are not supported`, configPath);
  const rank = Number(config.r);
  const alpha = Number(config.lora_alpha ?? rank);
  if (!Number.isInteger(rank) || rank < 1 || !(alpha > 0))
    throw new CheckpointError(`${configPath}: r and lora_alpha must be positive`, configPath);
  const scale = config.use_rslora ? alpha / Math.sqrt(rank) : alpha / rank;
  const path = join(dir, "adapter_model.safetensors");
  const source = await NodeFileSource.open(path).catch((e: NodeJS.ErrnoException) => {
    throw new CheckpointError(`${path}: cannot open (${e.code ?? e.message})`, path);
  });
  const file = await SafetensorsFile.open(source);
  const deltas = new Map<string, LoraDelta>();
  try {
    for (const name of file.tensors.keys()) {
      const m = /^base_model\.model\.(.+)\.lora_A(?:\.default)?\.weight$/.exec(name);
      if (!m) continue;
      const target = `${m[1]}.weight`;
      const bName = name.replace(".lora_A", ".lora_B");
      if (!file.tensors.has(bName)) throw new CheckpointError(`${path}: ${name} has no matching ${bName}`, path, name);
      const widen = async (n: string) => {
        const t = await file.readTensor(n);
        const out = new Float32Array(t.data.length);
        widenRow(out, t.data, t.dtype, 0, out.length);
        return { data: out, shape: t.shape };
      };
      const a = await widen(name);
      const b = await widen(bName);
      if (a.shape[0] !== rank || b.shape[1] !== rank)
        throw new CheckpointError(`${path}: ${name} does not have rank ${rank} from adapter_config.json`, path, name);
      deltas.set(target, { a: a.data, b: b.data, rank, scale });
    }
  } finally {
    await file.close();
  }
  if (deltas.size === 0) throw new CheckpointError(`${path}: no LoRA tensors (base_model.model.*.lora_A.weight)`, path);
  return deltas;
}
