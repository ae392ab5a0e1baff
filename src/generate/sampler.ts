/**
 * Turns logits into the next token: penalties, then greedy (temperature 0) or temperature →
 * top-k → top-p → min-p → a seeded draw.
 */
import { GenerationError } from "../errors.js";
import { Rng } from "./rng.js";

export interface SamplingOptions {
  /** 0 = greedy (default 1). */
  temperature?: number;
  /** Keep the k most likely tokens; 0 = off (default 0). */
  topK?: number;
  /** Keep the smallest set whose probability reaches p; 1 = off (default 1). */
  topP?: number;
  /** Drop tokens less likely than minP × the top token's probability; 0 = off (default 0). */
  minP?: number;
  /** HF/CTRL penalty on every token already in prompt or output: logit / r if positive, × r if negative (1 = off). */
  repetitionPenalty?: number;
  /** OpenAI: subtract this once from every token already generated (0 = off). */
  presencePenalty?: number;
  /** OpenAI: subtract this × the token's count in the output so far (0 = off). */
  frequencyPenalty?: number;
  /** Same seed, same output. Unset: a random seed. */
  seed?: number;
}

export class Sampler {
  private readonly rng: Rng;
  private readonly temperature: number;
  private readonly topK: number;
  private readonly topP: number;
  private readonly minP: number;
  private readonly repetitionPenalty: number;
  private readonly presencePenalty: number;
  private readonly frequencyPenalty: number;
  /** How often each token has been generated (for presence/frequency penalties). */
  private readonly generatedCounts = new Map<number, number>();
  /** Every token seen in prompt or output (for the repetition penalty). */
  private readonly seen = new Set<number>();
  /** Per-step rows kept across steps (penalized logits, draw weights): no 1-2 MiB of garbage per token. */
  private penalized: Float32Array | null = null;
  private weights: Float64Array | null = null;

  constructor(options: SamplingOptions = {}) {
    this.temperature = check("temperature", options.temperature ?? 1, (v) => v >= 0);
    this.topK = check("topK", options.topK ?? 0, (v) => Number.isInteger(v) && v >= 0);
    this.topP = check("topP", options.topP ?? 1, (v) => v > 0 && v <= 1);
    this.minP = check("minP", options.minP ?? 0, (v) => v >= 0 && v <= 1);
    this.repetitionPenalty = check("repetitionPenalty", options.repetitionPenalty ?? 1, (v) => v > 0);
    this.presencePenalty = check("presencePenalty", options.presencePenalty ?? 0, (v) => v >= -2 && v <= 2);
    this.frequencyPenalty = check("frequencyPenalty", options.frequencyPenalty ?? 0, (v) => v >= -2 && v <= 2);
    const seed = options.seed ?? Rng.randomSeed();
    if (!Number.isInteger(seed)) throw new GenerationError(`seed must be an integer, found ${seed}`);
    this.rng = new Rng(seed);
  }

  /** Records prompt tokens (they count for the repetition penalty only). */
  observePrompt(ids: readonly number[]): void {
    for (const id of ids) this.seen.add(id);
  }

  /** Records a generated token. */
  observe(id: number): void {
    this.seen.add(id);
    this.generatedCounts.set(id, (this.generatedCounts.get(id) ?? 0) + 1);
  }

  /** Picks the next token from one row of logits (not modified). */
  sample(logits: Float32Array): number {
    const adjusted = this.applyPenalties(logits);
    if (this.temperature === 0) return argmax(adjusted);
    return this.draw(adjusted);
  }

  private applyPenalties(logits: Float32Array): Float32Array {
    const penalize = this.repetitionPenalty !== 1 || this.presencePenalty !== 0 || this.frequencyPenalty !== 0;
    if (!penalize) return logits;
    if (this.penalized?.length !== logits.length) this.penalized = new Float32Array(logits.length);
    const out = this.penalized;
    out.set(logits);
    if (this.repetitionPenalty !== 1) {
      for (const id of this.seen) {
        const v = out[id]!;
        out[id] = v > 0 ? v / this.repetitionPenalty : v * this.repetitionPenalty;
      }
    }
    for (const [id, count] of this.generatedCounts) {
      out[id] = out[id]! - this.presencePenalty - this.frequencyPenalty * count;
    }
    return out;
  }

  /**
   * Filters without sorting the whole vocabulary: top-k by partial selection, top-p by sorting only
   * the tokens above a probability threshold that already holds p of the mass, min-p by a threshold.
   */
  private draw(logits: Float32Array): number {
    const invT = 1 / this.temperature;
    let max = -Infinity;
    for (let i = 0; i < logits.length; i++) if (logits[i]! > max) max = logits[i]!;
    if (this.weights?.length !== logits.length) this.weights = new Float64Array(logits.length);
    const weights = this.weights;
    let total = 0;
    for (let i = 0; i < logits.length; i++) total += weights[i] = Math.exp((logits[i]! - max) * invT);
    // The top token has weight 1, so min-p keeps weights >= minP.
    let candidates = this.minP > 0 ? indicesAbove(weights, this.minP) : null;
    if (this.topK > 0) candidates = topKIndices(weights, candidates, this.topK);
    if (this.topP < 1) {
      const inPool = (list: number[] | null, threshold: number) =>
        list ? list.filter((i) => weights[i]! >= threshold) : indicesAbove(weights, threshold);
      const massOf = (list: number[]) => list.reduce((sum, i) => sum + weights[i]!, 0);
      const target = this.topP * (candidates ? massOf(candidates) : total);
      // Tokens above a threshold that already hold p of the mass contain the whole nucleus: sort only them.
      let nucleusPool: number[] | null = null;
      for (let threshold = 1e-3; threshold > 1e-12 && !nucleusPool; threshold *= 1e-3) {
        const above = inPool(candidates, threshold);
        if (massOf(above) >= target) nucleusPool = above;
      }
      const sorted = (nucleusPool ?? inPool(candidates, 0)).sort((a, b) => weights[b]! - weights[a]! || a - b);
      let cumulative = 0;
      let kept = 0;
      while (kept < sorted.length && cumulative < target) cumulative += weights[sorted[kept++]!]!;
      candidates = sorted.slice(0, Math.max(1, kept));
    }
    if (candidates) {
      let sum = 0;
      for (const i of candidates) sum += weights[i]!;
      let u = this.rng.next() * sum;
      for (const i of candidates) {
        u -= weights[i]!;
        if (u < 0) return i;
      }
      return candidates[candidates.length - 1]!;
    }
    let u = this.rng.next() * total;
    for (let i = 0; i < weights.length; i++) {
      u -= weights[i]!;
      if (u < 0) return i;
    }
    return argmax(weights);
  }
}

function indicesAbove(weights: Float64Array, threshold: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < weights.length; i++) if (weights[i]! >= threshold) out.push(i);
  return out;
}

/** The k heaviest indices (ties: lower index first), best first. */
function topKIndices(weights: Float64Array, among: number[] | null, k: number): number[] {
  const best: number[] = [];
  const consider = (i: number) => {
    if (best.length === k && weights[i]! <= weights[best[k - 1]!]!) return;
    let at = best.length;
    while (at > 0 && weights[best[at - 1]!]! < weights[i]!) at--;
    best.splice(at, 0, i);
    if (best.length > k) best.pop();
  };
  if (among) among.forEach(consider);
  else for (let i = 0; i < weights.length; i++) consider(i);
  return best;
}

export function argmax(values: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i]! > values[best]!) best = i;
  return best;
}

function check(name: string, value: number, ok: (v: number) => boolean): number {
  if (typeof value !== "number" || Number.isNaN(value) || !ok(value)) throw new GenerationError(`invalid ${name}: ${value}`);
  return value;
}
