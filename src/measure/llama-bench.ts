/**
 * llama.cpp's `llama-bench` on the same GGUF, for `gemma-ts bench --compare`: runs it with the
 * same thread count and tests, reads its JSON report and matches its rows to ours. ppN is its
 * prompt test (n_prompt N, n_gen 0), tgN its decode test (n_prompt 0, n_gen N); tgN@P has no
 * counterpart in llama-bench and is left unmatched.
 */
import { spawn } from "node:child_process";
import type { BenchTest } from "./run.js";

export interface LlamaBenchRow {
  nPrompt: number;
  nGen: number;
  threads: number;
  tokensPerSecond: number;
}

export interface LlamaBenchRun {
  /** llama.cpp's commit as llama-bench reports it (`build_commit`). */
  commit: string;
  cpu: string;
  /** Bytes of the model's tensors (`model_size`): what a decode step reads. */
  modelBytes: number;
  rows: LlamaBenchRow[];
}

/** The llama-bench arguments for our tests on `threads` threads, repeated `repetitions` times. */
export function llamaBenchArgs(model: string, tests: BenchTest[], threads: number, repetitions: number): string[] | null {
  const prompts = tests.filter((t) => t.kind === "pp").map((t) => t.tokens);
  const gens = tests.filter((t) => t.kind === "tg" && t.position === 0).map((t) => t.tokens);
  if (prompts.length + gens.length === 0) return null;
  return [
    "-m",
    model,
    "-t",
    String(threads),
    "-p",
    prompts.length ? prompts.join(",") : "0",
    "-n",
    gens.length ? gens.join(",") : "0",
    "-r",
    String(repetitions),
    "-o",
    "json",
  ];
}

/** Parses llama-bench's `-o json` report; throws naming what is missing. */
export function parseLlamaBenchJson(text: string): LlamaBenchRun {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new Error(`llama-bench did not print a JSON report: ${text.trim().slice(0, 200) || "no output"}`);
  }
  if (!Array.isArray(parsed) || parsed.length === 0) throw new Error("llama-bench's JSON report holds no tests");
  const rows = parsed.map((entry: Record<string, unknown>, i) => {
    const field = (name: string) => {
      const value = entry?.[name];
      if (typeof value !== "number" || !Number.isFinite(value)) throw new Error(`llama-bench's JSON test ${i} has no numeric ${name}`);
      return value;
    };
    return { nPrompt: field("n_prompt"), nGen: field("n_gen"), threads: field("n_threads"), tokensPerSecond: field("avg_ts") };
  });
  const first = parsed[0] as Record<string, unknown>;
  const modelBytes = typeof first.model_size === "number" ? first.model_size : Number.NaN;
  return { commit: String(first.build_commit ?? "unknown"), cpu: String(first.cpu_info ?? "unknown"), modelBytes, rows };
}

/** llama-bench's speed for one of our tests, or null when it has no such test. */
export function llamaSpeedFor(run: LlamaBenchRun, test: BenchTest, threads: number): number | null {
  if (test.kind === "tg" && test.position !== 0) return null;
  const row = run.rows.find(
    (r) =>
      r.threads === threads && (test.kind === "pp" ? r.nPrompt === test.tokens && r.nGen === 0 : r.nGen === test.tokens && r.nPrompt === 0),
  );
  return row?.tokensPerSecond ?? null;
}

/** Runs llama-bench at `path` and parses its report; rejects with its stderr when it fails. */
export function runLlamaBench(path: string, args: string[]): Promise<LlamaBenchRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(path, args, { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", (e: NodeJS.ErrnoException) => reject(new Error(`cannot run llama-bench at ${path} (${e.code ?? e.message})`)));
    child.on("close", (code) => {
      if (code !== 0) return reject(new Error(`llama-bench failed (exit ${code}): ${stderr.trim().split("\n").slice(-3).join(" ")}`));
      try {
        resolve(parseLlamaBenchJson(stdout));
      } catch (e) {
        reject(e);
      }
    });
  });
}
