/**
 * The Gemma 2 paper's claim in miniature (docs/distillation.md): on the same text and the same
 * number of steps, a small student distilled from a larger teacher reaches a lower validation
 * perplexity than the same student trained by next-token prediction alone. The teacher itself is
 * trained here first, by next-token prediction.
 *
 *   sh scripts/prepare-kjv.sh data/kjv-genesis.txt Gen1:1-Gen50:26
 *   node --import tsx scripts/distillation-experiment.ts --data data/kjv-genesis.txt --out runs/distil
 *
 * Prints a markdown table and writes results.json into --out.
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { parseConfigJson, type GemmaConfig } from "../src/model/gemma/config.js";
import { loadModel } from "../src/gemma.js";
import { charTokenizerFiles } from "../src/tokenizer/char-vocab.js";
import { loadTokenizer } from "../src/tokenizer/load.js";
import { saveTrainedModel } from "../src/train/checkpoint-io.js";
import { loadTextDataset, type TextDataset } from "../src/train/data.js";
import { trainingLinear } from "../src/train/fast-linear.js";
import { TrainableGemma } from "../src/train/model.js";
import { TeacherTargets, writeTeacherTargets } from "../src/train/teacher-targets.js";
import { Trainer } from "../src/train/trainer.js";

const { values: args } = parseArgs({
  options: {
    data: { type: "string" },
    out: { type: "string", default: "runs/distillation" },
    "teacher-steps": { type: "string", default: "600" },
    "student-steps": { type: "string", default: "300" },
    batch: { type: "string", default: "8" },
    "seq-len": { type: "string", default: "128" },
    "top-k": { type: "string", default: "32" },
    alpha: { type: "string", default: "1" },
    seed: { type: "string", default: "1" },
  },
});
if (!args.data) throw new Error("--data FILE is required (see scripts/prepare-kjv.sh)");
const out = args.out!;
const seqLen = Number(args["seq-len"]);
const batch = Number(args.batch);
const seed = Number(args.seed);
mkdirSync(out, { recursive: true });

// A character vocabulary covering the text: small models, small embedding tables.
const tokDir = join(out, "tokenizer");
mkdirSync(tokDir, { recursive: true });
const vocab = charTokenizerFiles(readFileSync(args.data, "utf8"));
writeFileSync(join(tokDir, "tokenizer.json"), JSON.stringify(vocab.tokenizerJson));
writeFileSync(join(tokDir, "tokenizer_config.json"), JSON.stringify(vocab.tokenizerConfig));
const tokenizer = await loadTokenizer(tokDir);
const data = await loadTextDataset(args.data, tokenizer, seqLen);
const linear = await trainingLinear("wasm");

function gemma2(d: number, layers: number, heads: number, kvHeads: number, headDim: number, ffn: number): GemmaConfig {
  return parseConfigJson(
    JSON.stringify({
      model_type: "gemma2",
      vocab_size: vocab.vocabSize,
      hidden_size: d,
      num_hidden_layers: layers,
      num_attention_heads: heads,
      num_key_value_heads: kvHeads,
      head_dim: headDim,
      intermediate_size: ffn,
      query_pre_attn_scalar: headDim,
      sliding_window: 64,
      max_position_embeddings: seqLen,
      attn_logit_softcapping: 50,
      final_logit_softcapping: 30,
    }),
  );
}

const teacherConfig = gemma2(128, 4, 4, 2, 32, 512);
const studentConfig = gemma2(64, 2, 2, 1, 32, 256);

interface RunResult {
  name: string;
  parameters: number;
  steps: number;
  validationLoss: number;
  validationPerplexity: number;
  seconds: number;
  tokensPerSecond: number;
  curve: { step: number; trainLoss: number; validationLoss: number | null }[];
}

async function train(
  name: string,
  config: GemmaConfig,
  steps: number,
  dataset: TextDataset,
  targets: TeacherTargets | null,
  alpha: number,
): Promise<{ model: TrainableGemma; result: RunResult }> {
  const model = new TrainableGemma(config, "f32", linear).initRandom(seed);
  const trainer = new Trainer(
    model,
    dataset,
    {
      steps,
      batch,
      seqLen,
      lr: 2e-3,
      warmup: Math.min(50, steps / 10),
      seed,
      alpha,
      evalEvery: Math.max(1, Math.floor(steps / 10)),
      evalSequences: 0,
    },
    targets,
  );
  const started = performance.now();
  while (trainer.step < steps) {
    const log = trainer.trainStep(started);
    if (log.validationLoss !== null)
      console.error(
        `${name} step ${log.step}/${steps}: train ${log.trainLoss.toFixed(3)} validation ${log.validationLoss.toFixed(3)} (${log.tokensPerSecond.toFixed(0)} tokens/s)`,
      );
  }
  const seconds = (performance.now() - started) / 1000;
  const validationLoss = trainer.history.at(-1)!.validationLoss!;
  return {
    model,
    result: {
      name,
      parameters: model.parameterCount(),
      steps,
      validationLoss,
      validationPerplexity: Math.exp(validationLoss),
      seconds,
      tokensPerSecond: (steps * batch * seqLen) / seconds,
      curve: trainer.history.map((h) => ({ step: h.step, trainLoss: h.trainLoss, validationLoss: h.validationLoss })),
    },
  };
}

console.error(
  `data: ${data.tokens} tokens, ${data.train.length} training / ${data.validation.length} validation sequences of ${seqLen}; vocabulary ${vocab.vocabSize}`,
);
const teacherRun = await train("teacher (next-token)", teacherConfig, Number(args["teacher-steps"]), data, null, 0);
const teacherDir = join(out, "teacher");
await saveTrainedModel(teacherDir, teacherRun.model, { tokenizerDir: tokDir });

const targetsStarted = performance.now();
const teacherModel = await loadModel(teacherDir);
await writeTeacherTargets(teacherModel, teacherDir, data, { dir: join(out, "targets"), topK: Number(args["top-k"]), seqLen });
const targetsSeconds = (performance.now() - targetsStarted) / 1000;
const targets = await TeacherTargets.open(join(out, "targets"), { vocabSize: vocab.vocabSize, seqLen, data });

const studentSteps = Number(args["student-steps"]);
const alpha = Number(args.alpha);
const baseline = await train("student, next-token", studentConfig, studentSteps, data, null, 0);
const distilled = await train(
  `student, distilled (alpha ${alpha}, top-${args["top-k"]})`,
  studentConfig,
  studentSteps,
  data,
  targets,
  alpha,
);
await saveTrainedModel(join(out, "student-next-token"), baseline.model, { tokenizerDir: tokDir });
await saveTrainedModel(join(out, "student-distilled"), distilled.model, { tokenizerDir: tokDir });

const runs = [teacherRun.result, baseline.result, distilled.result];
writeFileSync(
  join(out, "results.json"),
  `${JSON.stringify({ data: args.data, tokens: data.tokens, seqLen, batch, seed, topK: Number(args["top-k"]), targetsSeconds, runs }, null, 2)}\n`,
);
console.log("| model | parameters | steps | validation loss (nats/char) | validation perplexity | wall time | tokens/s |");
console.log("|---|---|---|---|---|---|---|");
for (const r of runs) {
  console.log(
    `| ${r.name} | ${r.parameters.toLocaleString("en")} | ${r.steps} | ${r.validationLoss.toFixed(4)} | ${r.validationPerplexity.toFixed(3)} | ${r.seconds.toFixed(0)} s | ${r.tokensPerSecond.toFixed(0)} |`,
  );
}
console.log(`\nteacher targets (top-${args["top-k"]}, ${data.train.length} sequences): ${targetsSeconds.toFixed(0)} s`);
process.exit(0);
