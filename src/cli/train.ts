/**
 * `gemma-ts train`: a student from scratch (or from --init), by next-token prediction or by
 * distillation from stored teacher targets; resumable.
 */
import { appendFile, mkdir, readFile, stat, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { Command } from "commander";
import { parseConfigJson, type GemmaConfig } from "../model/gemma/config.js";
import { ConfigError, TokenizerError } from "../errors.js";
import { loadTokenizer } from "../tokenizer/load.js";
import type { TrainableGemma } from "../train/model.js";
import type { TrainSettings } from "../train/trainer.js";
import { backendOption, fraction, integer, nonNegativeInt, positive, positiveInt, threadsOption, UsageError } from "./options.js";
import { ProgressBar } from "./progress.js";

/** The trainer's settings as flags, plus where things come from and go. */
interface TrainFlags extends Omit<TrainSettings, "optimizer"> {
  config?: string;
  init?: string;
  tokenizer: string;
  data: string;
  targets?: string;
  valFraction: number;
  saveEvery: number;
  threads?: number;
  backend: "js" | "wasm";
  out: string;
  resume: boolean;
}

export function trainCommand(): Command {
  return new Command("train")
    .description("train a Gemma 2 student from scratch by next-token prediction, or by distillation from teacher targets")
    .option("--config <file>", "student config.json (Gemma 2; its vocab_size must cover the tokenizer)")
    .option("--init <dir>", "start from this Gemma 2 checkpoint instead of a random initialisation")
    .requiredOption(
      "--tokenizer <dir|file.gguf>",
      "folder with tokenizer.json, or a GGUF vocabulary file (copied into the output checkpoint)",
    )
    .requiredOption("--data <file>", "training text (UTF-8); the last --val-fraction is held out for validation")
    .option("--targets <dir>", "teacher targets from gemma-ts teacher-targets: train by distillation")
    .option("--alpha <a>", "weight of the distillation loss (1 − alpha goes to next-token loss)", fraction("--alpha"), 1)
    .option("--steps <n>", "optimizer steps", positiveInt("--steps"), 1000)
    .option("--batch <n>", "sequences per step (gradients accumulated over them)", positiveInt("--batch"), 8)
    .option("--seq-len <n>", "tokens per sequence", positiveInt("--seq-len"), 128)
    .option("--lr <lr>", "peak learning rate (AdamW, warmup then cosine to 10%)", positive("--lr"), 1e-3)
    .option("--warmup <n>", "warmup steps", nonNegativeInt("--warmup"), 50)
    .option("--seed <n>", "seed for initialisation and batch order", integer("--seed"), 1)
    .option("--eval-every <n>", "validate every n steps", positiveInt("--eval-every"), 100)
    .option("--eval-sequences <n>", "validation sequences per evaluation (0: all)", nonNegativeInt("--eval-sequences"), 0)
    .option("--val-fraction <f>", "share of the text held out for validation", fraction("--val-fraction"), 0.1)
    .option("--save-every <n>", "also save the checkpoint every n steps (0: only at the end)", nonNegativeInt("--save-every"), 0)
    .addOption(threadsOption("the wasm matmuls"))
    .addOption(backendOption())
    .option("--resume", "continue a run saved in --out (same settings)", false)
    .requiredOption("--out <dir>", "output checkpoint folder (config.json, model.safetensors, tokenizer files, train_log.jsonl)")
    .action(async (flags: TrainFlags, cmd: Command) => {
      const {
        loadTrainable,
        loadTrainerState,
        saveTrainedModel,
        loadTextDataset,
        TrainableGemma,
        TeacherTargets,
        Trainer,
        trainingLinear,
      } = await trainingStack();
      if (cmd.getOptionValueSource("alpha") === "cli" && !flags.targets)
        throw new UsageError("--alpha weighs the distillation loss and needs --targets");
      const tokenizer = await loadTokenizer(flags.tokenizer);
      const linear = await trainingLinear(flags.backend, flags.threads);
      let model: TrainableGemma;
      if (flags.init) {
        model = await loadTrainable(flags.init, "f32", linear);
      } else {
        if (!flags.config) throw new ConfigError("train needs --config (a student config.json) or --init (a checkpoint to start from)");
        const config = parseConfigJson(
          await readFile(flags.config, "utf8").catch((e: NodeJS.ErrnoException) => {
            throw new ConfigError(`${flags.config}: cannot read (${e.code ?? e.message})`);
          }),
          flags.config,
        ) as GemmaConfig;
        model = new TrainableGemma(config, "f32", linear).initRandom(flags.seed);
      }
      const config = model.config;
      if (tokenizer.vocabSize > config.vocabSize) {
        throw new TokenizerError(
          `the tokenizer in ${flags.tokenizer} has ${tokenizer.vocabSize} tokens but the student's vocab_size is ${config.vocabSize}`,
        );
      }
      if (flags.seqLen > config.maxPositions)
        throw new ConfigError(`--seq-len ${flags.seqLen} exceeds the student's max_position_embeddings ${config.maxPositions}`);
      const data = await loadTextDataset(flags.data, tokenizer, flags.seqLen, flags.valFraction);
      const targets = flags.targets
        ? await TeacherTargets.open(flags.targets, { vocabSize: config.vocabSize, seqLen: flags.seqLen, data })
        : null;
      const trainer = new Trainer(
        model,
        data,
        {
          steps: flags.steps,
          batch: flags.batch,
          seqLen: flags.seqLen,
          lr: flags.lr,
          warmup: flags.warmup,
          seed: flags.seed,
          alpha: targets ? flags.alpha : 0,
          evalEvery: flags.evalEvery,
          evalSequences: flags.evalSequences,
        },
        targets,
      );
      await mkdir(flags.out, { recursive: true });
      const logPath = join(flags.out, "train_log.jsonl");
      // What the weights depend on: a resumed run must use the same, or it is another run.
      const run: RunIdentity = {
        dataSha256: data.sha256,
        tokensSha256: data.tokensSha256,
        targets: targets ? resolve(flags.targets!) : null,
      };
      if (flags.resume) {
        const state = await loadTrainerState(flags.out, trainer.optimizer);
        if (!state) throw new ConfigError(`--resume: ${flags.out} holds no trainer_state.json`);
        refuseChangedSettings(join(flags.out, "trainer_state.json"), state, trainer.settings, run);
        const saved = await loadTrainable(flags.out);
        for (const [name, p] of saved.params) model.param(name).set(p);
        trainer.step = Number(state["step"]);
        await keepLogUpTo(logPath, trainer.step);
      } else if (await stat(logPath).catch(() => null)) {
        throw new ConfigError(`${flags.out} already holds a training run; pass --resume to continue it or choose another --out`);
      }
      const mode = targets ? `distillation (alpha ${flags.alpha}, top-${targets.meta.topK} targets)` : "next-token prediction";
      process.stderr.write(
        `training ${model.parameterCount().toLocaleString("en")} parameters by ${mode} on ${data.train.length} sequences of ` +
          `${flags.seqLen} tokens (${data.validation.length} held out), ${linear.name} matmuls\n`,
      );
      const save = () =>
        saveTrainedModel(flags.out, model, {
          tokenizerDir: flags.tokenizer,
          optimizer: trainer.optimizer,
          state: { step: trainer.step, settings: trainer.settings, run },
        });
      const bar = new ProgressBar("train", process.stderr, (done, total) => `step ${done}/${total}`);
      const started = performance.now();
      while (trainer.step < flags.steps) {
        const log = trainer.trainStep(started);
        await appendFile(logPath, `${JSON.stringify(log)}\n`);
        bar.relabel(`train loss ${log.trainLoss.toFixed(3)}`);
        bar.update(log.step, flags.steps);
        if (log.validationLoss !== null) {
          bar.done();
          const terms =
            log.distillationLoss === null
              ? ""
              : ` (distillation ${log.distillationLoss.toFixed(4)}, next-token ${log.nextTokenLoss.toFixed(4)})`;
          process.stderr.write(
            `step ${log.step}: train loss ${log.trainLoss.toFixed(4)}${terms}, validation loss ${log.validationLoss.toFixed(4)} ` +
              `(perplexity ${Math.exp(log.validationLoss).toFixed(2)}), ${log.tokensPerSecond.toFixed(0)} tokens/s\n`,
          );
        }
        if (flags.saveEvery > 0 && log.step % flags.saveEvery === 0) await save();
      }
      bar.done();
      await save();
      process.stderr.write(`saved ${flags.out}\n`);
    });
}

/** The inputs of a run besides its settings, by content. */
interface RunIdentity {
  dataSha256: string;
  tokensSha256: string;
  targets: string | null;
}

/** Settings that shape the weights; the evaluation cadence and save interval may change on resume. */
const RESUME_FIXED = ["steps", "batch", "seqLen", "lr", "warmup", "seed", "alpha"] as const;
const FLAG_OF: Record<(typeof RESUME_FIXED)[number], string> = {
  steps: "--steps",
  batch: "--batch",
  seqLen: "--seq-len",
  lr: "--lr",
  warmup: "--warmup",
  seed: "--seed",
  alpha: "--alpha",
};

function refuseChangedSettings(statePath: string, state: Record<string, unknown>, settings: TrainSettings, run: RunIdentity): void {
  const saved = (state["settings"] ?? {}) as Partial<TrainSettings>;
  const savedRun = (state["run"] ?? {}) as Partial<RunIdentity>;
  const refuse = (what: string) => {
    throw new ConfigError(`--resume: ${what} (saved in ${statePath}); resume with the run's own settings, or train into another --out`);
  };
  for (const key of RESUME_FIXED) {
    if (saved[key] !== undefined && saved[key] !== settings[key])
      refuse(`${FLAG_OF[key]} ${settings[key]} differs from the run's ${saved[key]}`);
  }
  if (savedRun.dataSha256 !== undefined && savedRun.dataSha256 !== run.dataSha256)
    refuse("--data is not the text this run was trained on (its sha256 differs)");
  if (savedRun.tokensSha256 !== undefined && savedRun.tokensSha256 !== run.tokensSha256)
    refuse("--tokenizer or --val-fraction differs: the training tokens are not the run's");
  if (savedRun.targets !== undefined && savedRun.targets !== run.targets)
    refuse(`--targets ${run.targets ?? "(none)"} differs from the run's ${savedRun.targets ?? "(none)"}`);
}

/** Drops log lines past the resumed step, so steps an interrupted run logged after its last save are not repeated. */
async function keepLogUpTo(logPath: string, step: number): Promise<void> {
  const text = await readFile(logPath, "utf8").catch(() => "");
  const kept = text.split("\n").filter((line) => {
    if (!line.trim()) return false;
    try {
      return (JSON.parse(line) as { step: number }).step <= step;
    } catch {
      return false; // a line cut by the interruption
    }
  });
  await writeFile(logPath, kept.map((l) => `${l}\n`).join(""));
}

/**
 * The training modules, loaded by the commands that train rather than with every command the CLI
 * has (they are 8 MiB of a CLI process).
 */
export async function trainingStack() {
  const [io, data, model, targets, trainer, linear] = await Promise.all([
    import("../train/checkpoint-io.js"),
    import("../train/data.js"),
    import("../train/model.js"),
    import("../train/teacher-targets.js"),
    import("../train/trainer.js"),
    import("../train/fast-linear.js"),
  ]);
  return { ...io, ...data, ...model, ...targets, ...trainer, ...linear };
}
