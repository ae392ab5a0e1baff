/**
 * LoRA fine-tuning on chat data: examples from a JSONL file of `{"messages": [...]}` lines,
 * encoded with the chat template and scored on the model's turns only; adapters trained with AdamW
 * on a frozen model; saved and read in PEFT's layout (adapter_config.json +
 * adapter_model.safetensors with `base_model.model.<weight>.lora_A.weight` / `lora_B.weight`),
 * so adapters move between gemma-ts and Hugging Face PEFT.
 */
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { GemmaError } from "../errors.js";
import { encodeChat, type ChatMessage } from "../tokenizer/chat-template.js";
import type { GemmaTokenizer } from "../tokenizer/tokenizer.js";
import { encodeSafetensors, type NamedTensor } from "../weights/safetensors-writer.js";
import { DataError } from "./data.js";
import type { TrainableGemma } from "./model.js";
import { AdamW, DEFAULT_ADAMW, scheduledLr } from "./optimizer.js";
import { batchIndices } from "./trainer.js";

export interface ChatExample {
  ids: number[];
  nextTokens: Int32Array;
  /** 1 where the next token belongs to a model turn. */
  mask: Uint8Array;
}

/** Reads chat examples; every assistant turn (its text and <end_of_turn>) is what the loss scores. */
export async function loadChatExamples(path: string, tokenizer: GemmaTokenizer, maxTokens: number): Promise<ChatExample[]> {
  const text = await readFile(path, "utf8").catch((e: NodeJS.ErrnoException) => {
    throw new DataError(`${path}: cannot read (${e.code ?? e.message})`);
  });
  const examples: ChatExample[] = [];
  const lines = text.split("\n");
  for (const [i, line] of lines.entries()) {
    if (line.trim() === "") continue;
    const where = `${path}:${i + 1}`;
    let messages: ChatMessage[];
    try {
      const parsed = JSON.parse(line) as { messages?: unknown };
      if (!Array.isArray(parsed.messages) || parsed.messages.length === 0)
        throw new Error('expected {"messages": [{"role", "content"}, ...]}');
      messages = parsed.messages as ChatMessage[];
    } catch (e) {
      throw new DataError(`${where}: ${(e as Error).message}`);
    }
    const full = encodeChat(tokenizer, messages, { addGenerationPrompt: false });
    const mask = new Uint8Array(full.length);
    messages.forEach((m, j) => {
      if (m.role !== "assistant" && m.role !== "model") return;
      // The reply's tokens lie between the prompt up to its turn and the conversation through it.
      const start = encodeChat(tokenizer, messages.slice(0, j), { addGenerationPrompt: true }).length;
      const end = encodeChat(tokenizer, messages.slice(0, j + 1), { addGenerationPrompt: false }).length;
      for (let t = start; t < end && t < full.length; t++) mask[t] = 1;
    });
    if (!mask.some((m) => m === 1)) throw new DataError(`${where}: no assistant message to learn from`);
    const ids = full.slice(0, Math.min(full.length - 1, maxTokens));
    // Position t predicts token t + 1: shift the mask with the targets.
    examples.push({ ids, nextTokens: Int32Array.from(full.slice(1, ids.length + 1)), mask: mask.slice(1, ids.length + 1) });
  }
  if (examples.length === 0) throw new DataError(`${path}: no examples`);
  return examples;
}

export interface LoraSettings {
  rank: number;
  alpha: number;
  steps: number;
  batch: number;
  lr: number;
  warmup: number;
  seed: number;
}

export interface LoraLog {
  step: number;
  loss: number;
  lr: number;
  gradNorm: number;
}

/** Trains the model's adapters (added beforehand with addLora) on chat examples. */
export function trainLora(
  model: TrainableGemma,
  examples: ChatExample[],
  settings: LoraSettings,
  onStep?: (log: LoraLog) => void,
): LoraLog[] {
  const { params, grads, shapes } = model.adapterTensors();
  if (params.size === 0) throw new GemmaError("trainLora needs adapters: call addLora first");
  const optimizer = new AdamW({ ...DEFAULT_ADAMW, lr: settings.lr, weightDecay: 0 }, shapes);
  const logs: LoraLog[] = [];
  for (let step = 0; step < settings.steps; step++) {
    const batch = batchIndices(settings.seed, step, settings.batch, examples.length).map((i) => examples[i]!);
    const scored = batch.reduce((n, e) => n + e.mask.reduce((a, b) => a + b, 0), 0);
    model.zeroGrads();
    let loss = 0;
    for (const e of batch) loss += model.lossAndBackward(e.ids, { nextTokens: e.nextTokens, mask: e.mask }, 1 / scored).total;
    const lr = scheduledLr(step, settings.lr, settings.warmup, settings.steps);
    const gradNorm = optimizer.update(params, grads, lr, () => false);
    const log = { step: step + 1, loss: loss / scored, lr, gradNorm };
    logs.push(log);
    onStep?.(log);
  }
  return logs;
}

const PEFT_PREFIX = "base_model.model.";

export async function saveLoraAdapter(
  dir: string,
  model: TrainableGemma,
  settings: Pick<LoraSettings, "rank" | "alpha">,
  baseModel: string,
): Promise<void> {
  await mkdir(dir, { recursive: true });
  const { params, shapes } = model.adapterTensors();
  const tensors: NamedTensor[] = [...params].map(([name, p]) => ({
    name: `${PEFT_PREFIX}${name}.weight`,
    dtype: "f32",
    shape: shapes.get(name)!,
    data: Float32Array.from(p),
  }));
  await writeFile(join(dir, "adapter_model.safetensors"), encodeSafetensors(tensors));
  const modules = [...new Set([...model.adapters.keys()].map((n) => /\.(\w+_proj)\.weight$/.exec(n)![1]!))];
  const config = {
    peft_type: "LORA",
    task_type: "CAUSAL_LM",
    r: settings.rank,
    lora_alpha: settings.alpha,
    lora_dropout: 0,
    bias: "none",
    fan_in_fan_out: false,
    target_modules: modules,
    base_model_name_or_path: baseModel,
    inference_mode: true,
  };
  await writeFile(join(dir, "adapter_config.json"), `${JSON.stringify(config, null, 2)}\n`);
}
