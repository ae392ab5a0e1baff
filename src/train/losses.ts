/**
 * Training losses over rows of (soft-capped) logits, each returning the summed loss and writing
 * its gradient with respect to the logits (scaled by `weight`, added to `grad`).
 *
 * Distillation (GEMMA2.md §6): the teacher's next-token distribution is stored as its top-k
 * probabilities per position. The mass outside the top k (r = 1 − Σ p_k) is kept as one "rest"
 * bucket: the loss is the cross-entropy between the teacher's and the student's distributions
 * coarsened to {top-k tokens, everything else}:
 *   L = −Σ_k p_k log q_k − r log(1 − Σ_k q_k)
 * so no teacher mass is dropped or invented, and with k = vocabulary it is the exact
 * −Σ_x P_T(x) log P_S(x) of the paper.
 */
import { logSoftmax, type Vec } from "./ops.js";

/** Teacher targets for a run of positions: `k` (id, probability) pairs per position. */
export interface TeacherTopK {
  k: number;
  ids: Int32Array;
  probs: Float32Array;
}

/**
 * Next-token cross-entropy: rows [tokens, vocab], targets[t] the id after position t. With a
 * `mask`, only positions whose mask is non-zero are scored (chat fine-tuning scores model turns).
 */
export function crossEntropy(
  grad: Vec | null,
  logits: Vec,
  targets: ArrayLike<number>,
  tokens: number,
  vocab: number,
  weight = 1,
  mask?: ArrayLike<number>,
): number {
  // One pass for the max, one for exp (kept for the gradient): softmax over 256k entries is the
  // costliest part of a small model's step, so each exp is computed once.
  const e = new Float64Array(vocab);
  let loss = 0;
  for (let t = 0; t < tokens; t++) {
    if (mask && !mask[t]) continue;
    const base = t * vocab;
    let max = -Infinity;
    for (let i = 0; i < vocab; i++) if (logits[base + i]! > max) max = logits[base + i]!;
    let sum = 0;
    for (let i = 0; i < vocab; i++) sum += e[i] = Math.exp(logits[base + i]! - max);
    const target = targets[t]!;
    loss += max + Math.log(sum) - logits[base + target]!;
    if (!grad) continue;
    const scale = weight / sum;
    for (let i = 0; i < vocab; i++) grad[base + i] = grad[base + i]! + scale * e[i]!;
    grad[base + target] = grad[base + target]! - weight;
  }
  return loss;
}

/** Distillation from top-k teacher probabilities with the rest-bucket treatment described above. */
export function distillation(grad: Vec | null, logits: Vec, teacher: TeacherTopK, tokens: number, vocab: number, weight = 1): number {
  const logp = new Float64Array(vocab);
  const { k, ids, probs } = teacher;
  let loss = 0;
  for (let t = 0; t < tokens; t++) {
    logSoftmax(logp, logits, t * vocab, vocab);
    let teacherMass = 0;
    let studentMass = 0;
    for (let j = 0; j < k; j++) {
      const p = probs[t * k + j]!;
      const id = ids[t * k + j]!;
      teacherMass += p;
      studentMass += Math.exp(logp[id]!);
      if (p > 0) loss -= p * logp[id]!;
    }
    const rest = Math.max(0, 1 - teacherMass);
    const studentRest = Math.max(1e-12, 1 - studentMass);
    if (rest > 0) loss -= rest * Math.log(studentRest);
    if (!grad) continue;
    // ∂L/∂z_j = P·q_j − p_j + (r / (1 − Q))·(q_j·[j ∈ top-k] − Q·q_j), P = Σ p_k, Q = Σ q_k.
    const base = t * vocab;
    const restFactor = rest / studentRest;
    const outside = teacherMass - restFactor * studentMass;
    for (let i = 0; i < vocab; i++) grad[base + i] = grad[base + i]! + weight * outside * Math.exp(logp[i]!);
    for (let j = 0; j < k; j++) {
      const id = ids[t * k + j]!;
      grad[base + id] = grad[base + id]! + weight * (restFactor * Math.exp(logp[id]!) - probs[t * k + j]!);
    }
  }
  return loss;
}
