/**
 * Gemma 4's mixture-of-experts block (docs/spec/GEMMA3-4.md §5): a router picks the top-k experts
 * of every token from the unit-gain-normed residual stream; each expert is a GeGLU MLP; their
 * outputs are summed with the renormalised router weights times a learned per-expert scale.
 */
import type { Kernels } from "../../backend/kernels.js";
import type { GemmaConfig } from "./config-common.js";
import type { MoeWeights } from "./weights.js";

/** out [seqLen, dModel] = Σ over each token's top-k experts of weight · expert(preNorm(h)). */
export function mixtureOfExperts(
  k: Kernels,
  c: GemmaConfig,
  w: MoeWeights,
  h: Float32Array,
  seqLen: number,
  out: Float32Array,
  unitGain: Float32Array,
): void {
  const d = c.dModel;
  const { experts, topK, expertDim } = c.moe!;
  const routed = new Float32Array(seqLen * d);
  k.rmsnorm(routed, h, unitGain, seqLen, d, c.rmsNormEps);
  const rootScale = d ** -0.5;
  for (let t = 0; t < seqLen; t++) {
    for (let j = 0; j < d; j++) routed[t * d + j] = Math.fround(routed[t * d + j]! * w.routerScale[j]!) * rootScale;
  }
  const scores = new Float32Array(seqLen * experts);
  k.matmul(scores, routed, w.router, seqLen);

  // Tokens each expert serves, with their weights, so every expert runs once over all of its tokens.
  const served: { tokens: number[]; weights: number[] }[] = Array.from({ length: experts }, () => ({ tokens: [], weights: [] }));
  for (let t = 0; t < seqLen; t++) {
    const chosen = topExperts(scores.subarray(t * experts, (t + 1) * experts), topK);
    const sum = chosen.reduce((a, e) => a + e.probability, 0);
    for (const { expert, probability } of chosen) {
      served[expert]!.tokens.push(t);
      served[expert]!.weights.push((probability / sum) * w.perExpertScale[expert]!);
    }
  }

  const input = new Float32Array(seqLen * d);
  k.rmsnorm(input, h, w.preNorm, seqLen, d, c.rmsNormEps);
  out.fill(0);
  for (const [e, { tokens, weights }] of served.entries()) {
    if (tokens.length === 0) continue;
    const n = tokens.length;
    const rows = new Float32Array(n * d);
    for (const [r, t] of tokens.entries()) rows.set(input.subarray(t * d, (t + 1) * d), r * d);
    const gate = new Float32Array(n * expertDim);
    const up = new Float32Array(n * expertDim);
    const expert = w.experts[e]!;
    k.matmul(gate, rows, expert.gate, n);
    k.matmul(up, rows, expert.up, n);
    k.geglu(gate, gate, up, n * expertDim, c.activation);
    const y = new Float32Array(n * d);
    k.matmul(y, gate, expert.down, n);
    for (const [r, t] of tokens.entries()) {
      const weight = weights[r]!;
      for (let j = 0; j < d; j++) out[t * d + j]! += weight * y[r * d + j]!;
    }
  }
}

/** The k most probable experts under a softmax of the router scores (ties: lower index first). */
function topExperts(scores: Float32Array, k: number): { expert: number; probability: number }[] {
  let max = -Infinity;
  for (const s of scores) max = Math.max(max, s);
  const exps = Array.from(scores, (s) => Math.exp(s - max));
  const total = exps.reduce((a, b) => a + b, 0);
  return exps
    .map((x, expert) => ({ expert, probability: x / total }))
    .sort((a, b) => b.probability - a.probability || a.expert - b.expert)
    .slice(0, k);
}
