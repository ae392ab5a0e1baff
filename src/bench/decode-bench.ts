/**
 * The decode benchmark: builds a synthetic model of a published shape and measures prompt
 * processing, then decode speed and memory with the state advanced to given positions.
 */
import { buildForward } from "../gemma.js";
import { PRESETS } from "../config.js";
import type { DecodeState, ModelConfig } from "../model/causal-lm.js";
import { KvCache } from "../model/kv-cache.js";
import type { Quantization } from "../model/weights.js";
import { RECURRENT_PRESETS } from "../model/recurrent-gemma/config.js";
import { RecurrentState } from "../model/recurrent-gemma/forward.js";
import { SyntheticSource } from "./synthetic.js";

/** Small shapes so the benchmark itself can be tested in seconds. */
const TINY_SHAPES: Record<string, ModelConfig> = {
  "gemma2-tiny": { ...PRESETS["gemma2-2b"], vocabSize: 512, dModel: 64, nLayers: 4, nHeads: 4, nKvHeads: 2, headDim: 16, ffnDim: 128, queryPreAttnScalar: 16, slidingWindow: 64, layerTypes: ["local", "global", "local", "global"] },
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

export interface BenchRow {
  test: string;
  position: number;
  tokensPerSecond: number;
  stateMB: number;
  rssMB: number;
  peakRssMB: number;
}

export interface BenchResult {
  shape: string;
  weightsMB: number;
  loadSeconds: number;
  rows: BenchRow[];
  skipped: string[];
}

const mb = (bytes: number) => Math.round(bytes / 1048576);
const peakRss = () => process.resourceUsage().maxRSS * 1024;

/**
 * Puts a fresh state at `position` without computing the tokens before it: the rows a real run
 * would hold are allocated (their contents do not change the cost), so decode there costs and
 * weighs what it would after generating that far.
 */
function advanceTo(state: DecodeState, position: number): void {
  if (state instanceof KvCache) for (const layer of state.layers) layer.reserve(position);
  else if (state instanceof RecurrentState) for (const ring of state.kv) ring?.reserve(position);
  state.length = position;
}

export async function runDecodeBench(
  shape: string,
  options: { promptTokens: number; decodeTokens: number; positions: number[]; backend?: "js" | "wasm"; quant?: Quantization; threads?: number; onRow?: (row: BenchRow) => void },
): Promise<BenchResult> {
  const config = BENCH_SHAPES[shape];
  if (!config) throw new Error(`unknown shape ${shape}`);
  const started = performance.now();
  const { forwardPass, weightBytes } = await buildForward(new SyntheticSource(config), config, { kernels: options.backend ?? "wasm", quant: options.quant ?? "none", ...(options.threads ? { threads: options.threads } : {}) });
  const loadSeconds = (performance.now() - started) / 1000;
  const rows: BenchRow[] = [];
  const skipped: string[] = [];
  const record = (row: Omit<BenchRow, "rssMB" | "peakRssMB">) => {
    const full = { ...row, rssMB: mb(process.memoryUsage().rss), peakRssMB: mb(peakRss()) };
    rows.push(full);
    options.onRow?.(full);
  };
  // Ordinary token ids (past the special ones), whatever the vocabulary size.
  const id = (i: number) => 3 + (i % (config.vocabSize - 3));
  const ids = (n: number, offset: number) => Array.from({ length: n }, (_, i) => id(offset + i));

  const state = forwardPass.createState();
  let t = performance.now();
  forwardPass.forward([2, ...ids(options.promptTokens - 1, 0)], state, "last");
  record({ test: `pp${options.promptTokens}`, position: 0, tokensPerSecond: options.promptTokens / ((performance.now() - t) / 1000), stateMB: mb(state.bytes()) });

  for (const requested of [...options.positions].sort((a, b) => a - b)) {
    // Near the end of a finite context, decode the last tokens that fit instead.
    const position = Math.min(requested, config.maxPositions - options.decodeTokens);
    if (position < 0 || (position !== requested && requested > config.maxPositions)) {
      skipped.push(`tg${options.decodeTokens}@${requested}: beyond the ${config.maxPositions}-token context`);
      continue;
    }
    const at = forwardPass.createState();
    advanceTo(at, position);
    t = performance.now();
    for (let i = 0; i < options.decodeTokens; i++) forwardPass.forward([id(i)], at, "last");
    record({ test: `tg${options.decodeTokens}`, position, tokensPerSecond: options.decodeTokens / ((performance.now() - t) / 1000), stateMB: mb(at.bytes()) });
  }
  return { shape, weightsMB: mb(weightBytes), loadSeconds, rows, skipped };
}
