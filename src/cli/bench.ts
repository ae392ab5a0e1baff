/** `gemma-ts bench`: speed and memory of a published model shape on synthetic weights (no download). */
import { availableParallelism, cpus } from "node:os";
import { Command, InvalidArgumentError, Option } from "commander";
import { BENCH_SHAPES, runDecodeBench, type BenchRow } from "../bench/decode-bench.js";
import type { Quantization } from "../model/weights.js";
import { parseNumber } from "./options.js";

function parsePositions(raw: string): number[] {
  // "8k" means 8 × 1024.
  const list = raw.split(",").map((s) => (/^\d+k$/i.test(s.trim()) ? Number(s.trim().slice(0, -1)) * 1024 : Number(s.trim())));
  if (!list.every((n) => Number.isInteger(n) && n >= 0)) throw new InvalidArgumentError(`--positions must be a comma-separated list of positions (e.g. 1024,8k), got "${raw}"`);
  return list;
}

export function benchCommand(): Command {
  const count = (name: string) => parseNumber(name, (v) => Number.isInteger(v) && v >= 1, "a positive integer");
  return new Command("bench")
    .description("measure prompt processing, decode speed and memory on synthetic weights of a published shape")
    .option("--shape <name>", `one of ${Object.keys(BENCH_SHAPES).join(", ")}`, "gemma2-2b")
    .option("--prompt <n>", "prompt tokens for the prompt-processing test", count("--prompt"), 16)
    .option("--decode <n>", "tokens decoded at each position", count("--decode"), 2)
    .option("--positions <list>", "positions to decode at (default 1024,4096,8192, the last one clamped to the context; 1024,8192,32768 for RecurrentGemma)", parsePositions)
    .addOption(new Option("--backend <name>", "compute backend").choices(["wasm", "js"]).default("wasm"))
    .addOption(new Option("--quant <type>", "weights: bf16 as generated, or quantized to q8_0 / q4_0").choices(["q8_0", "q4_0", "none"]).default("none"))
    .option("--threads <n>", "threads for the wasm backend (default: all cores)", count("--threads"))
    .option("--json", "print one JSON object", false)
    .action(async (flags: { shape: string; prompt: number; decode: number; positions?: number[]; backend: "js" | "wasm"; quant: Quantization; threads?: number; json: boolean }) => {
      const config = BENCH_SHAPES[flags.shape];
      if (!config) throw new InvalidArgumentError(`--shape must be one of ${Object.keys(BENCH_SHAPES).join(", ")}, got "${flags.shape}"`);
      const positions = flags.positions ?? (config.family === "recurrent_gemma" ? [1024, 8192, 32768] : [1024, 4096, 8192]);
      const machine = `${cpus()[0]?.model ?? "unknown cpu"} × ${cpus().length}, node ${process.version}`;
      const print = (row: BenchRow) => {
        if (!flags.json) {
          const at = row.test.startsWith("tg") ? ` at position ${row.position}`.padEnd(20) : "".padEnd(20);
          process.stdout.write(`  ${row.test.padEnd(6)}${at} ${row.tokensPerSecond.toFixed(3).padStart(9)} tokens/s   state ${String(row.stateMB).padStart(6)} MB   rss ${row.rssMB} MB   peak rss ${row.peakRssMB} MB\n`);
        }
      };
      if (!flags.json) process.stdout.write(`gemma-ts bench  shape ${flags.shape} (${flags.quant === "none" ? "bf16" : flags.quant} synthetic weights, ${flags.backend} backend${flags.backend === "wasm" ? `, ${flags.threads ?? availableParallelism()} threads` : ""})  ${machine}\n`);
      const result = await runDecodeBench(flags.shape, { promptTokens: flags.prompt, decodeTokens: flags.decode, positions, backend: flags.backend, quant: flags.quant, ...(flags.threads ? { threads: flags.threads } : {}), onRow: print });
      if (flags.json) {
        process.stdout.write(`${JSON.stringify({ machine, backend: flags.backend, threads: flags.backend === "wasm" ? (flags.threads ?? availableParallelism()) : 1, weights: flags.quant === "none" ? "bf16" : flags.quant, ...result })}\n`);
        return;
      }
      process.stdout.write(`  weights ${result.weightsMB} MB, built in ${result.loadSeconds.toFixed(1)} s\n`);
      for (const line of result.skipped) process.stdout.write(`  skipped ${line}\n`);
    });
}
