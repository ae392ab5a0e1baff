/** Option parsing shared by the commands: numbers with clear errors, sampling flags, model loading. */
import { BUNDLED_MODEL } from "../bundled.js";
import { InvalidArgumentError, Option, type Command } from "commander";
import { GemmaError } from "../errors.js";
import { loadModel, type GemmaModel } from "../gemma.js";
import type { Quantization } from "../model/tensors.js";
import type { ModelConfig } from "../model/causal-lm.js";
import type { GenerateOptions } from "../generate/generation.js";
import { DownloadProgress, ProgressBar } from "./progress.js";

/**
 * A bad combination of flags found inside a command's action. Commander prints the errors it finds
 * while parsing; one thrown later must be a GemmaError so that main.ts prints it.
 */
export class UsageError extends GemmaError {
  override name = "UsageError";
}

/** A listen() failure as one line naming the flag to change (EADDRINUSE and the like); others unchanged. */
export function listenError(e: NodeJS.ErrnoException, host: string, port: number): Error {
  if (e.code === "EADDRINUSE") return new UsageError(`port ${port} on ${host} is in use; pick another with --port (0: any free port)`);
  if (e.code === "EADDRNOTAVAIL" || e.code === "ENOTFOUND") return new UsageError(`--host ${host}: not an address of this machine`);
  if (e.code === "EACCES") return new UsageError(`port ${port} on ${host}: permission denied (ports below 1024 need privileges)`);
  return e;
}

export function parseNumber(name: string, check: (v: number) => boolean, expected: string) {
  return (raw: string): number => {
    const value = Number(raw);
    if (raw.trim() === "" || !Number.isFinite(value) || !check(value))
      throw new InvalidArgumentError(`${name} must be ${expected}, got "${raw}"`);
    return value;
  };
}

export const positiveInt = (name: string) => parseNumber(name, (v) => Number.isInteger(v) && v >= 1, "a positive integer");
export const nonNegativeInt = (name: string) => parseNumber(name, (v) => Number.isInteger(v) && v >= 0, "an integer ≥ 0");
export const integer = (name: string) => parseNumber(name, Number.isInteger, "an integer");
export const positive = (name: string) => parseNumber(name, (v) => v > 0, "a positive number");
export const fraction = (name: string) => parseNumber(name, (v) => v >= 0 && v <= 1, "a number from 0 to 1");

/** Worker threads: what one process may sensibly start. */
export const MAX_THREADS = 256;
export const isThreadCount = (v: number) => Number.isInteger(v) && v >= 1 && v <= MAX_THREADS;

/** --threads, as every command that runs the wasm kernels takes it. */
export function threadsOption(what = "the wasm backend's matmuls"): Option {
  return new Option("--threads <n>", `threads for ${what} (default: all cores)`).argParser(
    parseNumber("--threads", isThreadCount, `an integer from 1 to ${MAX_THREADS}`),
  );
}

/** --backend: the wasm kernels or the TypeScript reference (and for commands that run whole models, webgpu). */
export function backendOption(webgpu = false): Option {
  const gpu = webgpu ? ", or webgpu (the forward pass on a GPU through Dawn: npm install webgpu; experimental)" : "";
  return new Option("--backend <name>", `compute kernels: wasm (WebAssembly SIMD) or js (TypeScript reference)${gpu}`)
    .choices(webgpu ? ["wasm", "js", "webgpu"] : ["wasm", "js"])
    .default("wasm");
}

/** --host and --port of a server command. */
export function hostOption(what: string): Option {
  return new Option("--host <host>", `address to bind; 0.0.0.0 exposes ${what} to the network`).default("127.0.0.1");
}

export function portOption(fallback: number): Option {
  return new Option("--port <port>", "port to listen on (0: any free port)")
    .argParser(parseNumber("--port", (v) => Number.isInteger(v) && v >= 0 && v < 65536, "a port number"))
    .default(fallback);
}

/** A repeatable flag collected into a list. */
export const collect = (value: string, list: string[]): string[] => [...list, value];

export interface SamplingFlags {
  maxTokens: number;
  temperature: number;
  topK: number;
  topP: number;
  minP: number;
  repetitionPenalty: number;
  presencePenalty: number;
  frequencyPenalty: number;
  seed?: number;
  stop: string[];
}

export function addSamplingOptions(cmd: Command, defaultMaxTokens: number): Command {
  return cmd
    .option("-n, --max-tokens <n>", "most tokens to generate", positiveInt("--max-tokens"), defaultMaxTokens)
    .option(
      "-t, --temperature <t>",
      "sampling temperature; 0 = greedy",
      parseNumber("--temperature", (v) => v >= 0, "a number >= 0"),
      1,
    )
    .option(
      "--top-k <k>",
      "sample from the k most likely tokens; 0 = off",
      parseNumber("--top-k", (v) => Number.isInteger(v) && v >= 0, "an integer >= 0"),
      64,
    )
    .option(
      "--top-p <p>",
      "nucleus sampling; 1 = off",
      parseNumber("--top-p", (v) => v > 0 && v <= 1, "in (0, 1]"),
      0.95,
    )
    .option(
      "--min-p <p>",
      "drop tokens below p x the top probability; 0 = off",
      parseNumber("--min-p", (v) => v >= 0 && v <= 1, "in [0, 1]"),
      0,
    )
    .option(
      "--repetition-penalty <r>",
      "penalize tokens already present; 1 = off",
      parseNumber("--repetition-penalty", (v) => v > 0, "a number > 0"),
      1,
    )
    .option(
      "--presence-penalty <p>",
      "OpenAI presence penalty",
      parseNumber("--presence-penalty", (v) => v >= -2 && v <= 2, "in [-2, 2]"),
      0,
    )
    .option(
      "--frequency-penalty <p>",
      "OpenAI frequency penalty",
      parseNumber("--frequency-penalty", (v) => v >= -2 && v <= 2, "in [-2, 2]"),
      0,
    )
    .option(
      "--seed <n>",
      "random seed: same seed, same output",
      parseNumber("--seed", (v) => Number.isInteger(v) && v >= 0, "a non-negative integer"),
    )
    .option("--stop <text>", "stop before this text (repeatable)", collect, [] as string[]);
}

export function generateOptionsFrom(flags: SamplingFlags): GenerateOptions {
  const { maxTokens, temperature, topK, topP, minP, repetitionPenalty, presencePenalty, frequencyPenalty, seed, stop } = flags;
  return {
    maxTokens,
    temperature,
    topK,
    topP,
    minP,
    repetitionPenalty,
    presencePenalty,
    frequencyPenalty,
    stop,
    ...(seed === undefined ? {} : { seed }),
  };
}

/** The flags addModelOptions defines. */
export interface ModelFlags {
  model: string;
  debug: boolean;
  offline: boolean;
  backend: "js" | "wasm" | "webgpu";
  quant: Quantization;
  threads?: number;
  lora?: string;
  allowUnusedTensors?: boolean;
  relaxedSimd?: boolean;
}

/** The parts of a multimodal checkpoint that were not loaded, in words (null when there are none). */
export function textOnlyNote(config: ModelConfig): string | null {
  const inputs = "unsupportedInputs" in config ? config.unsupportedInputs : [];
  if (inputs.length === 0) return null;
  const towers = inputs.map((i) => (i === "image" ? "a vision" : "an audio")).join(" and ");
  const kinds = inputs.map((i) => `${i}s`).join(" and ");
  return `this checkpoint also has ${towers} tower; gemma-ts runs its text model only (${kinds} are not supported yet)`;
}

/** Loads a model (a folder or a Hub repo id) with progress bars; --debug prints diagnostics. */
export async function loadModelWithProgress(spec: string, flags: Omit<ModelFlags, "model">): Promise<GemmaModel> {
  const bar = new ProgressBar("Loading weights");
  const downloads = new DownloadProgress();
  const model = await loadModel(spec, {
    onProgress: (done, total) => bar.update(done, total),
    onDownloadProgress: (p) => downloads.update(p),
    ...(flags.offline ? { offline: true } : {}),
    ...(flags.backend ? { kernels: flags.backend } : {}),
    ...(flags.quant ? { quant: flags.quant } : {}),
    ...(flags.threads ? { threads: flags.threads } : {}),
    ...(flags.lora ? { lora: flags.lora } : {}),
    ...(flags.allowUnusedTensors ? { allowUnusedTensors: true } : {}),
    ...(flags.relaxedSimd === false ? { relaxedSimd: false } : {}),
    ...(flags.debug ? { onDebug: (m: string) => process.stderr.write(`debug: ${m}\n`) } : {}),
  });
  bar.done();
  const skipped = textOnlyNote(model.config);
  if (skipped) process.stderr.write(`note: ${skipped}\n`);
  return model;
}

/** Where a model comes from: what a command that only reads a checkpoint's description takes. */
export function addModelSourceOptions(cmd: Command, what = "checkpoint folder"): Command {
  return cmd
    .addOption(
      new Option(
        "-m, --model <dir|file|repo>",
        `${what}, a .gguf file, or a Hugging Face repo id (org/name[@revision], org/name/file.gguf) taken from the HF cache or downloaded`,
      ).default(BUNDLED_MODEL, "the bundled demo model"),
    )
    .option("--offline", "never use the network (also HF_HUB_OFFLINE=1)", false);
}

/** Options every command that loads and runs a model has. */
export function addModelOptions(cmd: Command, what = "checkpoint folder"): Command {
  return addModelSourceOptions(cmd, what)
    .addOption(backendOption(true))
    .addOption(threadsOption())
    .option("--no-relaxed-simd", "use the plain SIMD kernels even where relaxed SIMD's int8 dot products are available")
    .addOption(
      new Option(
        "--quant <type>",
        "quantize weights on load: q8_0 (8-bit blocks, half the memory of bf16), q4_0 (4-bit, a quarter) or none",
      )
        .choices(["q8_0", "q4_0", "none"])
        .default("none"),
    )
    .option("--lora <dir>", "a PEFT LoRA adapter folder (adapter_config.json + adapter_model.safetensors) merged into the weights")
    .option(
      "--allow-unused-tensors",
      "load even when the file holds tensors the config does not use (normally a sign of a wrong config)",
      false,
    )
    .option("--debug", "print diagnostics to stderr", false);
}
