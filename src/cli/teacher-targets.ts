/** `gemma-ts teacher-targets`: run a teacher once over the training text and store its top-k next-token distributions. */
import { Command } from "commander";
import { TokenizerError } from "../errors.js";
import { backendOption, fraction, loadModelWithProgress, positiveInt, threadsOption } from "./options.js";
import { ProgressBar } from "./progress.js";
import { trainingStack } from "./train.js";

interface TeacherFlags {
  teacher: string;
  data: string;
  topK: number;
  seqLen: number;
  valFraction: number;
  out: string;
  backend: "js" | "wasm";
  threads?: number;
}

export function teacherTargetsCommand(): Command {
  return new Command("teacher-targets")
    .description("run a teacher model once over the training text and store its top-k next-token probabilities (resumable)")
    .requiredOption("--teacher <dir>", "teacher checkpoint (folder or GGUF file) with a tokenizer")
    .requiredOption("--data <file>", "the training text the student will use")
    .option("--top-k <k>", "probabilities kept per position", positiveInt("--top-k"), 32)
    .option("--seq-len <n>", "tokens per sequence (the student's --seq-len)", positiveInt("--seq-len"), 128)
    .option("--val-fraction <f>", "share held out for validation (the student's --val-fraction)", fraction("--val-fraction"), 0.1)
    .addOption(backendOption())
    .addOption(threadsOption())
    .requiredOption("--out <dir>", "targets folder (meta.json + targets.bin); an interrupted run continues")
    .action(async (flags: TeacherFlags) => {
      const { loadTextDataset, writeTeacherTargets } = await trainingStack();
      const teacher = await loadModelWithProgress(flags.teacher, {
        debug: false,
        offline: false,
        backend: flags.backend,
        quant: "none",
        ...(flags.threads ? { threads: flags.threads } : {}),
      });
      if (!teacher.tokenizer) throw new TokenizerError(`${flags.teacher} has no tokenizer; the teacher needs one to read the text`);
      const data = await loadTextDataset(flags.data, teacher.tokenizer, flags.seqLen, flags.valFraction);
      const bar = new ProgressBar("teacher", process.stderr, (done, total) => `${done}/${total} sequences`);
      const meta = await writeTeacherTargets(teacher, flags.teacher, data, {
        dir: flags.out,
        topK: flags.topK,
        seqLen: flags.seqLen,
        onProgress: (d, t) => bar.update(d, t),
      });
      bar.done();
      process.stderr.write(`wrote top-${meta.topK} targets for ${meta.sequences} sequences of ${meta.seqLen} tokens to ${flags.out}\n`);
    });
}
