/**
 * `gemma-ts bench`: prompt processing and decode speed, time to first token, load time and peak RSS
 * of a published model shape on synthetic weights (no download), per weight type and thread count,
 * with decode put against this machine's memory read bandwidth measured in the same run. Each
 * weights × threads configuration runs in a child process so its peak RSS is its own.
 */
import { spawn } from "node:child_process";
import { availableParallelism, cpus } from "node:os";
import { Command, InvalidArgumentError, Option } from "commander";
import { measureReadBandwidth } from "../measure/bandwidth.js";
import {
  BENCH_SHAPES,
  BENCH_WEIGHTS,
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
  shape: string;
  weights: BenchWeights[];
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

const parseWeights = listOf<BenchWeights>(
  "--weights",
  (s) => ((BENCH_WEIGHTS as readonly string[]).includes(s) ? (s as BenchWeights) : null),
  BENCH_WEIGHTS.join(" / "),
);
const parseThreads = listOf<number>(
  "--threads",
  (s) => (/^\d+$/.test(s) && isThreadCount(Number(s)) ? Number(s) : null),
  `integers from 1 to ${MAX_THREADS}`,
);
const parseTests = listOf<BenchTest>("--tests", parseBenchTest, "ppN, tgN or tgN@POSITION (e.g. pp128,tg64,tg4@8k)");

export function benchCommand(): Command {
  return new Command("bench")
    .description("measure prompt processing, decode speed, time to first token and memory on synthetic weights of a published shape")
    .option("--shape <name>", `one of ${[...Object.keys(SHAPE_ALIASES), ...Object.keys(BENCH_SHAPES)].join(", ")}`, "gemma2-2b")
    .option("--weights <list>", `weight types to compare: ${BENCH_WEIGHTS.join(", ")} (q8_0/q4_0 are quantized on load)`, parseWeights, [
      "bf16",
    ] as BenchWeights[])
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
      const shape = SHAPE_ALIASES[flags.shape] ?? flags.shape;
      if (!BENCH_SHAPES[shape])
        throw new UsageError(
          `--shape must be one of ${[...Object.keys(SHAPE_ALIASES), ...Object.keys(BENCH_SHAPES)].join(", ")}, got "${flags.shape}"`,
        );
      if (flags.child) return runChild(shape, flags);

      const machine = `${cpus()[0]?.model ?? "unknown cpu"} × ${cpus().length}, node ${process.version}`;
      const log = (line: string) => flags.json || process.stdout.write(`${line}\n`);
      log(`gemma-ts bench  shape ${shape}, ${flags.backend} backend  ${machine}`);
      let bandwidthGBps: number | null = null;
      const bandwidthByThreads: Record<string, number> = {};
      if (flags.bandwidth && flags.backend === "wasm") {
        for (const threads of new Set([1, ...flags.threads])) bandwidthByThreads[threads] = round(await measureReadBandwidth(threads), 2);
        bandwidthGBps = Math.max(...Object.values(bandwidthByThreads));
        log(
          `  memory read bandwidth ${Object.entries(bandwidthByThreads)
            .map(([t, gb]) => `${gb} GB/s (${t} thread${t === "1" ? "" : "s"})`)
            .join(", ")}`,
        );
      }
      const results: BenchRow[] = [];
      const configs: {
        weights: BenchWeights;
        threads: number;
        weightsMB: number;
        loadSeconds: number;
        skipped: string[];
        kernels: string;
      }[] = [];
      for (const weights of flags.weights) {
        for (const threads of flags.backend === "wasm" ? flags.threads : [1]) {
          const result = await spawnChild(shape, weights, threads, flags, bandwidthGBps);
          configs.push({
            weights,
            threads,
            weightsMB: result.weightsMB,
            loadSeconds: round(result.loadSeconds, 2),
            skipped: result.skipped,
            kernels: result.kernels,
          });
          results.push(...result.rows);
          log(
            `  ${weights} (${result.weightsMB} MB, built in ${result.loadSeconds.toFixed(1)} s), ${threads} ` +
              `thread${threads === 1 ? "" : "s"}, ${result.kernels} kernels`,
          );
          for (const row of result.rows) {
            const fraction = row.bandwidthFraction === null ? "" : `   ${(100 * row.bandwidthFraction).toFixed(0)}% of the bandwidth bound`;
            const ttft = row.ttftSeconds === null ? "" : `   ttft ${row.ttftSeconds.toFixed(2)} s`;
            log(
              `    ${row.test.padEnd(12)} ${row.tokensPerSecond.toFixed(2).padStart(9)} tokens/s${ttft}${fraction}   state ` +
                `${row.stateMB} MB   peak rss ${row.peakRssMB} MB`,
            );
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
      if (flags.json) {
        const rounded = results.map((r) => ({
          ...r,
          tokensPerSecond: round(r.tokensPerSecond, 3),
          bandwidthFraction: r.bandwidthFraction === null ? null : round(r.bandwidthFraction, 3),
          ttftSeconds: r.ttftSeconds === null ? null : round(r.ttftSeconds, 3),
        }));
        process.stdout.write(
          `${JSON.stringify({ machine, bandwidthGBps, bandwidthByThreads, backend: flags.backend, configs, results: rounded })}\n`,
        );
      }
    });
}

const round = (v: number, digits: number) => Number(v.toFixed(digits));

async function runChild(shape: string, flags: BenchFlags): Promise<void> {
  const { weights, threads, bandwidthGBps } = JSON.parse(flags.child!) as {
    weights: BenchWeights;
    threads: number;
    bandwidthGBps: number | null;
  };
  const result = await runBenchConfig(shape, {
    weights,
    threads,
    tests: flags.tests,
    backend: flags.backend,
    relaxedSimd: flags.relaxedSimd,
    profile: flags.profile,
    ...(bandwidthGBps ? { bandwidthGBps } : {}),
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
  bandwidthGBps: number | null,
): Promise<BenchConfigResult> {
  const args = [
    ...process.execArgv,
    process.argv[1]!,
    "bench",
    "--shape",
    shape,
    "--backend",
    flags.backend,
    "--tests",
    flags.tests.map((t) => t.name).join(","),
    ...(flags.profile ? ["--profile"] : []),
    ...(flags.relaxedSimd ? [] : ["--no-relaxed-simd"]),
    "--child",
    JSON.stringify({ weights, threads, bandwidthGBps }),
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
