/**
 * Log-probabilities of generated tokens, from the logits before penalties and temperature (under a
 * response format, after its mask: the distribution the token was drawn from).
 */
import type { TokenLogprob } from "./stop-strings.js";

/** log softmax(logits)[id], plus the `top` most likely tokens (best first). */
export function tokenLogprobs(logits: Float32Array, id: number, top: number): { logprob: number; topLogprobs: TokenLogprob[] } {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) if (logits[i]! > max) max = logits[i]!;
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += Math.exp(logits[i]! - max);
  const logZ = max + Math.log(sum);
  const best: number[] = [];
  if (top > 0) {
    // Insertion into a short sorted list: top is at most 20.
    for (let i = 0; i < logits.length; i++) {
      if (best.length === top && logits[i]! <= logits[best[top - 1]!]!) continue;
      let at = best.length;
      while (at > 0 && logits[best[at - 1]!]! < logits[i]!) at--;
      best.splice(at, 0, i);
      if (best.length > top) best.pop();
    }
  }
  // Tokens a grammar forbade (logit -Infinity) are no alternatives.
  const alternatives = best.filter((i) => logits[i] !== -Infinity);
  return { logprob: logits[id]! - logZ, topLogprobs: alternatives.map((i) => ({ id: i, logprob: logits[i]! - logZ })) };
}
