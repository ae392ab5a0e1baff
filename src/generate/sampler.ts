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

/**
 * Tokens this far below the best (after temperature) have probability < e^-40 ≈ 4e-18 each; with a
 * 256k vocabulary they hold < 1e-12 of the mass, so skipping them changes nothing measurable and
 * keeps sorting cheap.
 */
const NEGLIGIBLE_LOGIT_GAP = 40;

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
    const out = Float32Array.from(logits);
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

  private draw(logits: Float32Array): number {
    const invT = 1 / this.temperature;
    let max = -Infinity;
    for (let i = 0; i < logits.length; i++) if (logits[i]! > max) max = logits[i]!;
    // Candidates sorted by logit, best first.
    const floor = max - NEGLIGIBLE_LOGIT_GAP * this.temperature;
    const candidates: number[] = [];
    for (let i = 0; i < logits.length; i++) if (logits[i]! >= floor) candidates.push(i);
    candidates.sort((a, b) => logits[b]! - logits[a]! || a - b);
    let kept = this.topK > 0 ? Math.min(this.topK, candidates.length) : candidates.length;
    const probs = new Float64Array(kept);
    let sum = 0;
    for (let i = 0; i < kept; i++) {
      probs[i] = Math.exp((logits[candidates[i]!]! - max) * invT);
      sum += probs[i]!;
    }
    if (this.topP < 1) {
      let cumulative = 0;
      for (let i = 0; i < kept; i++) {
        cumulative += probs[i]! / sum;
        if (cumulative >= this.topP) {
          kept = i + 1;
          break;
        }
      }
    }
    if (this.minP > 0) {
      const threshold = this.minP * probs[0]!;
      let i = 1;
      while (i < kept && probs[i]! >= threshold) i++;
      kept = i;
    }
    let total = 0;
    for (let i = 0; i < kept; i++) total += probs[i]!;
    let u = this.rng.next() * total;
    for (let i = 0; i < kept; i++) {
      u -= probs[i]!;
      if (u < 0) return candidates[i]!;
    }
    return candidates[kept - 1]!;
  }
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
