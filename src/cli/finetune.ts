/** `gemma-ts finetune`: LoRA adapters on chat data for a frozen Gemma 2 checkpoint, saved in PEFT's layout. */
import { Command } from "commander";
import { loadTokenizer } from "../tokenizer/load.js";
import { backendOption, integer, nonNegativeInt, positive, positiveInt, threadsOption } from "./options.js";
import { ProgressBar } from "./progress.js";
import { trainingStack } from "./train.js";

interface FinetuneFlags {
  model: string;
  data: string;
  loraRank: number;
  loraAlpha?: number;
  steps: number;
  batch: number;
  lr: number;
  warmup: number;
  seed: number;
  maxTokens: number;
  backend: "js" | "wasm";
  threads?: number;
  out: string;
}

export function finetuneCommand(): Command {
  return new Command("finetune")
    .description("LoRA fine-tuning of a frozen Gemma 2 checkpoint on chat data; saves a PEFT adapter")
    .requiredOption("-m, --model <dir>", "base Gemma 2 checkpoint folder (with tokenizer.json)")
    .requiredOption(
      "--data <file>",
      'chat examples, one JSON object per line: {"messages": [{"role": "user", "content": ...}, {"role": "assistant", ...}]}',
    )
    .option("--lora-rank <r>", "adapter rank", positiveInt("--lora-rank"), 8)
    .option("--lora-alpha <a>", "adapter scale numerator (scale = alpha / rank; default 2 × rank)", positive("--lora-alpha"))
    .option("--steps <n>", "optimizer steps", positiveInt("--steps"), 100)
    .option("--batch <n>", "examples per step", positiveInt("--batch"), 4)
    .option("--lr <lr>", "peak learning rate", positive("--lr"), 2e-4)
    .option("--warmup <n>", "warmup steps", nonNegativeInt("--warmup"), 10)
    .option("--seed <n>", "seed for adapter initialisation and example order", integer("--seed"), 1)
    .option("--max-tokens <n>", "truncate examples to this many tokens", positiveInt("--max-tokens"), 512)
    .addOption(backendOption())
    .addOption(threadsOption("the wasm matmuls"))
    .requiredOption("--out <dir>", "adapter folder (PEFT layout: adapter_config.json + adapter_model.safetensors)")
    .action(async (flags: FinetuneFlags) => {
      const [{ loadTrainable, trainingLinear, LORA_TARGETS }, { loadChatExamples, saveLoraAdapter, trainLora }] = await Promise.all([
        trainingStack(),
        import("../train/lora.js"),
      ]);
      const tokenizer = await loadTokenizer(flags.model);
      const linear = await trainingLinear(flags.backend, flags.threads);
      const model = await loadTrainable(flags.model, "f32", linear);
      const examples = await loadChatExamples(flags.data, tokenizer, Math.min(flags.maxTokens, model.config.maxPositions));
      const alpha = flags.loraAlpha ?? 2 * flags.loraRank;
      model.addLora(flags.loraRank, alpha, LORA_TARGETS, flags.seed);
      const adapterCount = [...model.adapterTensors().params.values()].reduce((n, p) => n + p.length, 0);
      process.stderr.write(
        `fine-tuning ${adapterCount.toLocaleString("en")} adapter parameters (rank ${flags.loraRank}, alpha ${alpha}) on ` +
          `${examples.length} chat examples, base model frozen\n`,
      );
      const bar = new ProgressBar("finetune", process.stderr, (done, total) => `step ${done}/${total}`);
      const logs = trainLora(
        model,
        examples,
        { rank: flags.loraRank, alpha, steps: flags.steps, batch: flags.batch, lr: flags.lr, warmup: flags.warmup, seed: flags.seed },
        (log) => {
          bar.relabel(`finetune loss ${log.loss.toFixed(3)}`);
          bar.update(log.step, flags.steps);
        },
      );
      bar.done();
      await saveLoraAdapter(flags.out, model, { rank: flags.loraRank, alpha }, flags.model);
      process.stderr.write(
        `loss ${logs[0]!.loss.toFixed(4)} → ${logs.at(-1)!.loss.toFixed(4)}; saved the adapter to ${flags.out} (use it with --lora ` +
          `${flags.out})\n`,
      );
    });
}
