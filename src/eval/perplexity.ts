/**
 * Perplexity of a model on a text, sliding over texts longer than the context: windows of
 * `context` tokens advance by `stride`; each token is scored once, by the first window that sees
 * it with the most left context (the Hugging Face recipe). The first token (<bos>) is not scored.
 */
import type { GemmaModel } from "../gemma-model.js";

export interface PerplexityResult {
  perplexity: number;
  /** Mean negative log-likelihood per scored token, in nats. */
  meanNll: number;
  tokens: number;
  windows: number;
}

export async function perplexity(
  model: GemmaModel,
  ids: readonly number[],
  options: { context: number; stride?: number; onProgress?: (done: number, total: number) => void },
): Promise<PerplexityResult> {
  const context = Math.min(options.context, model.config.maxPositions);
  const stride = Math.max(1, Math.min(options.stride ?? context, context));
  const vocab = model.config.vocabSize;
  let nll = 0;
  let scored = 0;
  let windows = 0;
  let scoredUpTo = 1; // positions < scoredUpTo already have their loss
  const starts: number[] = [];
  for (let start = 0; ; start += stride) {
    starts.push(start);
    if (start + context >= ids.length) break;
  }
  for (const start of starts) {
    const end = Math.min(ids.length, start + context);
    const window = ids.slice(start, end);
    const logits = await model.logits(window);
    for (let target = Math.max(scoredUpTo, start + 1); target < end; target++) {
      const row = (target - 1 - start) * vocab;
      let max = -Infinity;
      for (let i = 0; i < vocab; i++) max = Math.max(max, logits[row + i]!);
      let sum = 0;
      for (let i = 0; i < vocab; i++) sum += Math.exp(logits[row + i]! - max);
      nll += max + Math.log(sum) - logits[row + ids[target]!]!;
      scored++;
    }
    scoredUpTo = Math.max(scoredUpTo, end);
    windows++;
    options.onProgress?.(windows, starts.length);
  }
  const meanNll = scored > 0 ? nll / scored : Number.NaN;
  return { perplexity: Math.exp(meanNll), meanNll, tokens: scored, windows };
}
