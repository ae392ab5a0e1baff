/**
 * `gemma-ts bench`: prompt processing and decode speed, time to first token, load time and peak RSS
 * of a published model shape on synthetic weights (no download) or of a real model file, per
 * weight type and thread count, with decode put against this machine's memory read bandwidth
 * measured in the same run: the configuration's threads reading the weights themselves between
 * every few decoded tokens, since a shared VM's bandwidth moves within seconds. Each weights ×
 * threads configuration runs in a child process so its peak RSS is its own. `--compare
 * llama-bench=PATH` runs llama.cpp's llama-bench on the same GGUF after each of ours
 * (alternating, `--rounds` times) and reports the ratio per test.
 */
import { spawn } from "node:child_process";
import { statSync } from "node:fs";
import { basename } from "node:path";
import { availableParallelism, cpus } from "node:os";
import { Command, InvalidArgumentError, Option } from "commander";
import { measureReadBandwidth } from "../measure/bandwidth.js";
import { llamaBenchArgs, llamaSpeedFor, runLlamaBench, type LlamaBenchRun } from "../measure/llama-bench.js";
import {
  BENCH_SHAPES,
  BENCH_WEIGHTS,
  DECODE_SEGMENT,
  MODEL_WEIGHTS,
  parseBenchTest,
  runBenchConfig,
  SHAPE_ALIASES,
  type BenchConfigResult,
  type BenchRow,
  type BenchTest,
  type BenchWeights,
} from "../measure/run.js";
import { backendOption, isThreadCount, MAX_THREADS, UsageError } from "./options.js";

interface BenchFlags {
  shape?: string;
  model?: string;
  compare?: string;
  rounds: number;
  weights?: BenchWeights[];
  threads: number[];
  tests: BenchTest[];
  backend: "js" | "wasm";
  relaxedSimd: boolean;
  bandwidth: boolean;
  profile: boolean;
  json: boolean;
  /** Internal: run one configuration and print its result as JSON (used by the parent). */
  child?: string;
}

function listOf<T>(name: string, parse: (item: string) => T | null, expected: string) {
  return (raw: string): T[] => {
    const items = raw
      .split(",")
      .map((s) => s.trim())
      .filter(Boolean);
    const parsed = items.map(parse);
    if (items.length === 0 || parsed.some((p) => p === null))
      throw new InvalidArgumentError(`${name} must be a comma-separated list of ${expected}, got "${raw}"`);
    return parsed as T[];
  };
}

const ALL_WEIGHTS: readonly string[] = [...new Set([...BENCH_WEIGHTS, ...MODEL_WEIGHTS])];
const parseWeights = listOf<BenchWeights>(
  "--weights",
  (s) => (ALL_WEIGHTS.includes(s) ? (s as BenchWeights) : null),
  ALL_WEIGHTS.join(" / "),
);
const parseThreads = listOf<number>(
  "--threads",
  (s) => (/^\d+$/.test(s) && isThreadCount(Number(s)) ? Number(s) : null),
  `integers from 1 to ${MAX_THREADS}`,
);
const parseRounds = (raw: string): number => {
  if (!/^\d+$/.test(raw) || Number(raw) < 1 || Number(raw) > 100) throw new InvalidArgumentError(`--rounds must be 1 to 100, got "${raw}"`);
  return Number(raw);
};
const parseTests = listOf<BenchTest>("--tests", parseBenchTest, "ppN, tgN or tgN@POSITION (e.g. pp128,tg64,tg4@8k)");

export function benchCommand(): Command {
  return new Command("bench")
    .description("measure prompt processing, decode speed, time to first token and memory on synthetic weights or a model file")
    .option("--shape <name>", `one of ${[...Object.keys(SHAPE_ALIASES), ...Object.keys(BENCH_SHAPES)].join(", ")} (default: gemma2-2b)`)
    .option("--model <path>", "time this model (a .gguf file or a Hugging Face folder) instead of synthetic weights")
    .option(
      "--weights <list>",
      `weight types to compare: ${BENCH_WEIGHTS.join(", ")} (default bf16); with --model: ${MODEL_WEIGHTS.join(", ")} ` +
        "(default stored); q8_0/q4_0 are quantized on load",
      parseWeights,
    )
    .option("--compare <tool=path>", "also run llama.cpp's llama-bench on the --model GGUF: llama-bench=/path/to/llama-bench")
    .option("--rounds <n>", "with --compare: alternate both tools this many times and report medians", parseRounds, 1)
    .option("--threads <list>", "thread counts to compare (default: all cores)", parseThreads, [availableParallelism()])
    .option(
      "--tests <list>",
      "tests: ppN (prompt of N tokens), tgN (decode N tokens), tgN@P (decode at position P)",
      parseTests,
      parseTests("pp128,pp512,tg64"),
    )
    .addOption(backendOption())
    .option("--no-relaxed-simd", "use the plain SIMD kernels even where relaxed SIMD's int8 dot products are available")
    .option("--no-bandwidth", "skip the memory bandwidth measurement")
    .option("--profile", "time every kernel call and print where each test's time goes", false)
    .option("--json", "print one JSON object", false)
    .addOption(new Option("--child <config>").hideHelp())
    .action(async (flags: BenchFlags) => {
      const { shape, weights, llamaBench } = checkTarget(flags);
      if (flags.child) return runChild(shape, flags);

      const machine = `${cpus()[0]?.model ?? "unknown cpu"} × ${cpus().length}, node ${process.version}`;
      const log = (line: string) => flags.json || process.stdout.write(`${line}\n`);
      log(`gemma-ts bench  ${flags.model ? `model ${flags.model}` : `shape ${shape}`}, ${flags.backend} backend  ${machine}`);
      let bandwidthGBps: number | null = null;
      const bandwidthByThreads: Record<string, number> = {};
      /** GB/s on 1 thread and on each thread count asked for, measured one after another. */
      const probeEach = async () => {
        const byThreads: Record<string, number> = {};
        for (const threads of new Set([1, ...flags.threads])) byThreads[threads] = round(await measureReadBandwidth(threads), 2);
        return byThreads;
      };
      /** The best of them: what one thread or all can read. */
      const probe = async () => Math.max(...Object.values(await probeEach()));
      if (flags.bandwidth && flags.backend === "wasm") {
        Object.assign(bandwidthByThreads, await probeEach());
        bandwidthGBps = Math.max(...Object.values(bandwidthByThreads));
        log(
          `  memory read bandwidth ${Object.entries(bandwidthByThreads)
            .map(([t, gb]) => `${gb} GB/s (${t} thread${t === "1" ? "" : "s"})`)
            .join(", ")}`,
        );
      }
      const results: ComparedRow[] = [];
      const configs: {
        weights: BenchWeights;
        threads: number;
        /** The mean of the probes before and after the configuration (null: not measured). */
        bandwidthGBps: number | null;
        weightsMB: number;
        weightBytes: number;
        loadSeconds: number;
        skipped: string[];
        kernels: string;
      }[] = [];
      let llamaCpp: { commit: string; cpu: string } | null = null;
      // The probe just before each configuration (the first one, then the one after the last).
      let probedBefore = bandwidthGBps;
      for (const w of weights) {
        for (const threads of flags.backend === "wasm" ? flags.threads : [1]) {
          // Alternating: ours, then llama-bench, `rounds` times; medians per test.
          const ours: BenchConfigResult[] = [];
          const theirs: LlamaBenchRun[] = [];
          for (let round = 0; round < flags.rounds; round++) {
            ours.push(await spawnChild(shape, w, threads, flags, bandwidthGBps !== null));
            const args = llamaBench && llamaBenchArgs(flags.model!, flags.tests, threads, 3);
            if (llamaBench && args) theirs.push(await runLlamaBench(llamaBench, args));
          }
          const result = ours.at(-1)!;
          llamaCpp ??= theirs[0] ? { commit: theirs[0].commit, cpu: theirs[0].cpu } : null;
          // The machine's bandwidth right before and right after the configuration (decode's own bound
          // is measured in the child, between its tokens).
          const before = probedBefore;
          const after = before === null ? null : await probe();
          const configBandwidth = before === null || after === null ? null : round((before + after) / 2, 2);
          probedBefore = after;
          configs.push({
            weights: w,
            threads,
            bandwidthGBps: configBandwidth,
            weightsMB: result.weightsMB,
            weightBytes: result.weightBytes,
            loadSeconds: round(median(ours.map((o) => o.loadSeconds)), 2),
            skipped: result.skipped,
            kernels: result.kernels,
          });
          // Decode rows whose bound the child measured between segments of tokens (runBenchConfig).
          const streamedBetween = result.rows.some((row) => row.bandwidthGBps !== null);
          log(
            `  ${w} (${result.weightsMB} MiB, ${flags.model ? "loaded" : "built"} in ${result.loadSeconds.toFixed(1)} s), ${threads} ` +
              `thread${threads === 1 ? "" : "s"}, ${result.kernels} kernels` +
              (configBandwidth === null ? "" : `; probes before and after: ${before} and ${after} GB/s`) +
              (streamedBetween
                ? `; decode's bound: ${threads === 1 ? "this thread" : `these ${threads} threads`} reading the weights before and ` +
                  `after every ${DECODE_SEGMENT} tokens`
                : ""),
          );
          let largestState = 0;
          for (const [i, row] of result.rows.entries()) {
            const tokensPerSecond = median(ours.map((o) => o.rows[i]!.tokensPerSecond));
            const scale = tokensPerSecond / row.tokensPerSecond;
            const test = flags.tests.find((t) => t.name === row.test)!;
            const llama = theirs.length ? median(theirs.map((t) => llamaSpeedFor(t, test, threads) ?? Number.NaN)) : Number.NaN;
            // Decode reads every tensor once per token (llama-bench's model_size; the file's size if it has none).
            const llamaBytes = () => (Number.isFinite(theirs[0]!.modelBytes) ? theirs[0]!.modelBytes : statSync(flags.model!).size);
            // A bound measured in the child: the median over rounds, and the fraction set against it.
            const rowBandwidth = row.bandwidthGBps === null ? null : median(ours.map((o) => o.rows[i]!.bandwidthGBps ?? Number.NaN));
            const bandwidthFraction =
              row.bandwidthFraction === null || rowBandwidth === null
                ? null
                : (row.bandwidthFraction * scale * row.bandwidthGBps!) / rowBandwidth;
            const compared: ComparedRow = {
              ...row,
              tokensPerSecond,
              bandwidthFraction,
              bandwidthGBps: rowBandwidth,
              ...(llamaBench
                ? {
                    llamaCpp: Number.isNaN(llama)
                      ? null
                      : {
                          tokensPerSecond: llama,
                          bandwidthFraction: test.kind === "tg" && rowBandwidth ? (llama * llamaBytes()) / (rowBandwidth * 1e9) : null,
                        },
                    ratio: Number.isNaN(llama) ? null : tokensPerSecond / llama,
                  }
                : {}),
            };
            results.push(compared);
            const fraction =
              compared.bandwidthFraction === null
                ? ""
                : `   ${(100 * compared.bandwidthFraction).toFixed(0)}% of the bandwidth bound` +
                  (rowBandwidth === null ? "" : ` (${rowBandwidth.toFixed(1)} GB/s)`);
            const ttft = row.ttftSeconds === null ? "" : `   ttft ${row.ttftSeconds.toFixed(2)} s`;
            // The memory target: peak RSS at most the weights plus the decode state, plus 10%. The peak
            // is the process's so far, so it is set against the largest state so far.
            largestState = Math.max(largestState, row.stateMB);
            const over = (100 * (row.peakRssMB / (result.weightsMB + largestState) - 1)).toFixed(1);
            log(
              `    ${row.test.padEnd(12)} ${tokensPerSecond.toFixed(2).padStart(9)} tokens/s${ttft}${fraction}   state ` +
                `${row.stateMB} MiB   peak rss ${row.peakRssMB} MiB (weights + largest state ${over.startsWith("-") ? "" : "+"}${over}%)`,
            );
            if (compared.llamaCpp) {
              const theirFraction = compared.llamaCpp.bandwidthFraction;
              log(
                `      llama.cpp ${compared.llamaCpp.tokensPerSecond.toFixed(2).padStart(9)} tokens/s` +
                  `${theirFraction === null ? "" : ` (${(100 * theirFraction).toFixed(0)}% of the bandwidth bound)`}` +
                  `   gemma-ts / llama.cpp ${compared.ratio!.toFixed(2)}`,
              );
            } else if (llamaBench) log("      llama.cpp: no matching llama-bench test");
            const total = row.profile?.reduce((s, k) => s + k.seconds, 0) ?? 0;
            for (const k of row.profile ?? [])
              log(
                `      ${k.kernel.padEnd(28)} ${((100 * k.seconds) / total).toFixed(1).padStart(5)}%  ${k.seconds.toFixed(3)} s in ` +
                  `${k.calls} calls`,
              );
          }
          for (const line of result.skipped) log(`    skipped ${line}`);
        }
      }
      if (llamaCpp) log(`  llama.cpp ${llamaCpp.commit} (llama-bench -r 3 per round, ${llamaCpp.cpu})`);
      if (flags.json) {
        const rounded = results.map((r) => ({
          ...r,
          tokensPerSecond: round(r.tokensPerSecond, 3),
          bandwidthFraction: r.bandwidthFraction === null ? null : round(r.bandwidthFraction, 3),
          bandwidthGBps: r.bandwidthGBps === null ? null : round(r.bandwidthGBps, 2),
          ttftSeconds: r.ttftSeconds === null ? null : round(r.ttftSeconds, 3),
          ...(r.llamaCpp === undefined
            ? {}
            : {
                llamaCpp: r.llamaCpp && {
                  tokensPerSecond: round(r.llamaCpp.tokensPerSecond, 3),
                  bandwidthFraction: r.llamaCpp.bandwidthFraction === null ? null : round(r.llamaCpp.bandwidthFraction, 3),
                },
                ratio: r.ratio === null || r.ratio === undefined ? null : round(r.ratio, 3),
              }),
        }));
        const model = flags.model ?? null;
        const report = { machine, model, bandwidthGBps, bandwidthByThreads, backend: flags.backend, llamaCpp, configs, results: rounded };
        process.stdout.write(`${JSON.stringify(report)}\n`);
      }
    });
}

const round = (v: number, digits: number) => Number(v.toFixed(digits));
const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

/** A row of ours, with llama.cpp's figure for the same test under --compare. */
interface ComparedRow extends BenchRow {
  llamaCpp?: { tokensPerSecond: number; bandwidthFraction: number | null } | null;
  /** gemma-ts tokens/s over llama.cpp's. */
  ratio?: number | null;
}

/** The shape or model file to run, its weight types, and llama-bench's path under --compare. */
function checkTarget(flags: BenchFlags): { shape: string; weights: BenchWeights[]; llamaBench: string | null } {
  const shapes = [...Object.keys(SHAPE_ALIASES), ...Object.keys(BENCH_SHAPES)];
  let llamaBench: string | null = null;
  if (flags.compare !== undefined) {
    const m = /^llama-bench=(.+)$/.exec(flags.compare);
    if (!m) throw new UsageError(`--compare must be llama-bench=PATH, got "${flags.compare}"`);
    if (!flags.model?.endsWith(".gguf")) throw new UsageError("--compare needs --model FILE.gguf: llama-bench runs the same file");
    llamaBench = m[1]!;
  }
  if (flags.rounds !== 1 && !llamaBench) throw new UsageError("--rounds alternates gemma-ts with llama-bench: it needs --compare");
  if (flags.model !== undefined) {
    if (flags.shape !== undefined) throw new UsageError("--shape and --model are alternatives: the model file has its own shape");
    const weights = flags.weights ?? ["stored"];
    const wrong = weights.find((w) => !(MODEL_WEIGHTS as readonly string[]).includes(w));
    if (wrong) throw new UsageError(`with --model, --weights must be among ${MODEL_WEIGHTS.join(", ")}, got "${wrong}"`);
    return { shape: basename(flags.model), weights, llamaBench };
  }
  const shape = SHAPE_ALIASES[flags.shape ?? "gemma2-2b"] ?? flags.shape!;
  if (!BENCH_SHAPES[shape]) throw new UsageError(`--shape must be one of ${shapes.join(", ")}, got "${flags.shape}"`);
  const weights = flags.weights ?? ["bf16"];
  const wrong = weights.find((w) => !(BENCH_WEIGHTS as readonly string[]).includes(w));
  if (wrong) throw new UsageError(`--weights must be among ${BENCH_WEIGHTS.join(", ")}, got "${wrong}"`);
  return { shape, weights, llamaBench };
}

async function runChild(shape: string, flags: BenchFlags): Promise<void> {
  const { weights, threads, measureBandwidth } = JSON.parse(flags.child!) as {
    weights: BenchWeights;
    threads: number;
    measureBandwidth: boolean;
  };
  const result = await runBenchConfig(shape, {
    ...(flags.model ? { model: flags.model } : {}),
    weights,
    threads,
    tests: flags.tests,
    backend: flags.backend,
    relaxedSimd: flags.relaxedSimd,
    profile: flags.profile,
    measureBandwidth,
  });
  process.stdout.write(`${JSON.stringify(result)}\n`);
  // The wasm worker pool would otherwise keep the child alive.
  process.exit(0);
}

/** Runs one configuration in a fresh process (this CLI, same Node flags) and reads its JSON result. */
function spawnChild(
  shape: string,
  weights: BenchWeights,
  threads: number,
  flags: BenchFlags,
  /** Whether the child measures decode's bound between its tokens. */
  measureBandwidth: boolean,
): Promise<BenchConfigResult> {
  const args = [
    ...process.execArgv,
    process.argv[1]!,
    "bench",
    ...(flags.model ? ["--model", flags.model] : ["--shape", shape]),
    "--backend",
    flags.backend,
    "--tests",
    flags.tests.map((t) => t.name).join(","),
    ...(flags.profile ? ["--profile"] : []),
    ...(flags.relaxedSimd ? [] : ["--no-relaxed-simd"]),
    "--child",
    JSON.stringify({ weights, threads, measureBandwidth }),
  ];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => {
      if (code !== 0)
        return reject(new Error(`bench of ${weights} × ${threads} threads failed (exit ${code}): ${stderr.trim() || "no output"}`));
      try {
        resolve(JSON.parse(stdout.trim().split("\n").at(-1)!) as BenchConfigResult);
      } catch {
        reject(new Error(`bench of ${weights} × ${threads} threads printed no result: ${stderr.trim()}`));
      }
    });
  });
}
