/**
 * One benchmark configuration (shape × weights × threads): builds a synthetic model of a published
 * shape, or loads a real model file, and runs its tests: `ppN` (prompt processing of N tokens from
 * an empty state), `tgN` (decoding N tokens one by one from an empty state) and `tgN@P` (decoding N
 * tokens with the state advanced to position P, for long-context cost and memory).
 */
import { buildForward, openCheckpoint, resolveKernels } from "../gemma.js";
import { KernelProfile, type KernelTiming } from "./profile.js";
import { PRESETS, uniformLayers } from "../model/gemma/config.js";
import type { DecodeState, ModelConfig } from "../model/causal-lm.js";
import { KvCache } from "../model/kv-cache.js";
import { RECURRENT_PRESETS } from "../model/recurrent-gemma/config.js";
import { RecurrentState } from "../model/recurrent-gemma/forward.js";
import { SyntheticSource } from "./synthetic.js";
import { freeBuffer } from "../weights/free-buffer.js";

/** Small shapes so the benchmark itself can be tested in seconds. */
const TINY_SHAPES: Record<string, ModelConfig> = {
  "gemma2-tiny": {
    ...PRESETS["gemma2-2b"],
    vocabSize: 512,
    dModel: 64,
    nLayers: 4,
    nHeads: 4,
    nKvHeads: 2,
    headDim: 16,
    ffnDim: 128,
    queryPreAttnScalar: 16,
    layers: uniformLayers(4, 16, 2, 128),
    slidingWindow: 64,
    layerTypes: ["local", "global", "local", "global"],
  },
  "recurrentgemma-tiny": {
    ...RECURRENT_PRESETS["recurrentgemma-2b"],
    vocabSize: 512,
    dModel: 64,
    nLayers: 6,
    nHeads: 4,
    headDim: 16,
    lruWidth: 64,
    ffnDim: 192,
    attentionWindow: 64,
    rotaryDim: 8,
    blockTypes: ["recurrent", "recurrent", "attention", "recurrent", "recurrent", "attention"],
  },
};

export const BENCH_SHAPES: Record<string, ModelConfig> = { ...PRESETS, ...RECURRENT_PRESETS, ...TINY_SHAPES };
/** Short names: `--shape 9b`. */
export const SHAPE_ALIASES: Readonly<Record<string, string>> = {
  "2b": "gemma2-2b",
  "9b": "gemma2-9b",
  "27b": "gemma2-27b",
  tiny: "gemma2-tiny",
};

export const BENCH_WEIGHTS = ["f32", "bf16", "f16", "q8_0", "q4_0"] as const;
/** With a model file: its weights as stored, or quantized on load. */
export const MODEL_WEIGHTS = ["stored", "q8_0", "q4_0"] as const;
export type BenchWeights = (typeof BENCH_WEIGHTS)[number] | (typeof MODEL_WEIGHTS)[number];

export interface BenchTest {
  kind: "pp" | "tg";
  tokens: number;
  /** Decode tests: the position the state is advanced to first. */
  position: number;
  name: string;
}

/** Parses `pp128`, `tg64`, `tg4@4096` (`8k` = 8192). */
export function parseBenchTest(raw: string): BenchTest | null {
  const m = /^(pp|tg)(\d+)(?:@(\d+)(k?))?$/i.exec(raw.trim());
  if (!m || Number(m[2]) < 1) return null;
  const kind = m[1]!.toLowerCase() as "pp" | "tg";
  if (kind === "pp" && m[3] !== undefined) return null;
  const position = m[3] === undefined ? 0 : Number(m[3]) * (m[4] ? 1024 : 1);
  return { kind, tokens: Number(m[2]), position, name: `${kind}${m[2]}${m[3] === undefined ? "" : `@${position}`}` };
}

export interface BenchRow {
  shape: string;
  weights: BenchWeights;
  threads: number;
  test: string;
  tokensPerSecond: number;
  /** Decode rows: tokens/s over the bandwidth bound (bandwidth / bytes read per token); null elsewhere. */
  bandwidthFraction: number | null;
  /**
   * Decode rows whose bound was measured during the test (DECODE_SEGMENT): the bandwidth it comes
   * to, GB/s (tokens × bytes per token / the bound's seconds); null where none was measured.
   */
  bandwidthGBps: number | null;
  /** MiB (2^20 bytes), as every *MB field here. */
  peakRssMB: number;
  /** Prompt rows: time to the first token's logits. */
  ttftSeconds: number | null;
  /** Decode state (KV cache or recurrent state) at the end of the test. */
  stateMB: number;
  position: number;
  /** With --profile: time per kernel during this test. */
  profile?: KernelTiming[];
}

export interface BenchConfigResult {
  rows: BenchRow[];
  weightsMB: number;
  /** The same, exactly. */
  weightBytes: number;
  loadSeconds: number;
  skipped: string[];
  /** The kernels that ran (`wasm-relaxed×2`, `wasm`, `js`, ...). */
  kernels: string;
}

const mb = (bytes: number) => Math.round(bytes / 1048576);

/**
 * Decode tests run in segments of this many tokens, with the backend's threads streaming the
 * weights (Kernels.weightReadGBps) before the first and after each: a shared machine's bandwidth
 * moves within seconds, so each segment is set against the reads measured on either side of it.
 */
export const DECODE_SEGMENT = 8;
const peakRssMB = () => mb(process.resourceUsage().maxRSS * 1024);

/**
 * Puts a fresh state at `position` without computing the tokens before it: the rows a real run
 * would hold by the end of the test are allocated (their contents do not change the cost), so
 * decode there costs and weighs what it would after generating that far, without timing the one
 * growth of the cache that a real run spreads over all the tokens before.
 */
function advanceTo(state: DecodeState, position: number, end: number): void {
  if (state instanceof KvCache) for (const layer of state.layers) layer.reserve(end);
  else if (state instanceof RecurrentState) for (const ring of state.kv) ring?.reserve(end);
  state.length = position;
}

/** `shape` names a synthetic model of that shape; with `model`, it is only the label of the file's rows. */
export async function runBenchConfig(
  shape: string,
  options: {
    /** A model file or folder to time instead of synthetic weights. */
    model?: string;
    weights: BenchWeights;
    threads: number;
    tests: BenchTest[];
    backend?: "js" | "wasm";
    /** false: the plain SIMD kernels even where relaxed SIMD is available. */
    relaxedSimd?: boolean;
    /** Measure decode's bound during each decode test (DECODE_SEGMENT), where the backend can. */
    measureBandwidth?: boolean;
    profile?: boolean;
    onRow?: (row: BenchRow) => void;
  },
): Promise<BenchConfigResult> {
  const { weights, threads } = options;
  const started = performance.now();
  const opened = options.model ? await openCheckpoint(options.model) : null;
  const config = opened?.config ?? BENCH_SHAPES[shape];
  if (!config) throw new Error(`unknown shape ${shape}`);
  const stored = weights === "q8_0" || weights === "q4_0" || weights === "stored" ? "bf16" : weights;
  const quant = weights === "q8_0" || weights === "q4_0" ? weights : "none";
  const profile = options.profile ? new KernelProfile() : null;
  const backend = await resolveKernels(options.backend ?? "wasm", {
    threads,
    ...(options.relaxedSimd === false ? { relaxedSimd: false } : {}),
  });
  const kernels = profile ? profile.wrap(backend, config.vocabSize) : backend;
  const source = opened?.checkpoint ?? new SyntheticSource(config, 1, stored);
  const { forwardPass, weightBytes } = await buildForward(source, config, { kernels, quant, threads }).finally(() =>
    opened?.checkpoint.close(),
  );
  const loadSeconds = (performance.now() - started) / 1000;
  const rows: BenchRow[] = [];
  const skipped: string[] = [];
  // Ordinary token ids (past the special ones), whatever the vocabulary size.
  const id = (i: number) => 3 + (i % (config.vocabSize - 3));

  for (const test of options.tests) {
    if (test.position + test.tokens > config.maxPositions) {
      skipped.push(`${test.name}: beyond the ${config.maxPositions}-token context`);
      continue;
    }
    // A warm-up pass on a state of its own first, as llama-bench runs one before its tests (up to
    // 32 prompt tokens, or one decoded): the first use of each matrix and of scratch memory is
    // not what a test measures.
    const warmUp = forwardPass.createState();
    freeBuffer(
      forwardPass.forward(
        [2, ...Array.from({ length: (test.kind === "pp" ? Math.min(32, test.tokens) : 1) - 1 }, (_, i) => id(i))],
        warmUp,
        "last",
      ),
    );
    // Its rows are not what the test holds: freed now, not whenever a GC finalizes them.
    warmUp.release();
    const state = forwardPass.createState();
    advanceTo(state, test.position, test.position + test.tokens);
    profile?.reset();
    // Decode reads every weight once per token (the tied embedding is the output head) plus the state.
    const bytesPerToken = weightBytes + state.bytes();
    const streamWeights = options.measureBandwidth && backend.weightReadGBps ? () => backend.weightReadGBps!() : null;
    let seconds = 0;
    // Seconds the decoded tokens would take at the bandwidth measured around their segment.
    let boundSeconds = 0;
    if (test.kind === "pp") {
      const t = performance.now();
      freeBuffer(forwardPass.forward([2, ...Array.from({ length: test.tokens - 1 }, (_, i) => id(i))], state, "last"));
      seconds = (performance.now() - t) / 1000;
    } else {
      let before = streamWeights?.() ?? 0;
      for (let from = 0; from < test.tokens; from += DECODE_SEGMENT) {
        const to = Math.min(test.tokens, from + DECODE_SEGMENT);
        const t = performance.now();
        // Each token's logits handed back at once, as generation does (freeBuffer).
        for (let i = from; i < to; i++) freeBuffer(forwardPass.forward([i === 0 && test.position === 0 ? 2 : id(i)], state, "last"));
        seconds += (performance.now() - t) / 1000;
        if (!streamWeights) continue;
        const after = streamWeights();
        // A backend holding no weights of its own reads nothing: no bound then.
        boundSeconds += before > 0 && after > 0 ? ((to - from) * bytesPerToken) / (((before + after) / 2) * 1e9) : Number.NaN;
        before = after;
      }
    }
    const tokensPerSecond = test.tokens / seconds;
    const measured = test.kind === "tg" && boundSeconds > 0;
    const row: BenchRow = {
      shape,
      weights,
      threads,
      test: test.name,
      tokensPerSecond,
      bandwidthFraction: measured ? boundSeconds / seconds : null,
      bandwidthGBps: measured ? (test.tokens * bytesPerToken) / boundSeconds / 1e9 : null,
      peakRssMB: peakRssMB(),
      ttftSeconds: test.kind === "pp" ? seconds : null,
      stateMB: mb(state.bytes()),
      position: test.position,
      ...(profile ? { profile: profile.report() } : {}),
    };
    rows.push(row);
    options.onRow?.(row);
    // The next test starts from the kernels' memory this one used, not beside it.
    state.release();
  }
  return { rows, weightsMB: mb(weightBytes), weightBytes, loadSeconds, skipped, kernels: backend.name };
}
