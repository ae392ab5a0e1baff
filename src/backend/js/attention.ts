/**
 * Reference attention over cached + new keys: GQA head mapping, scale, soft-cap before the mask,
 * sliding-window mask, fp32-style softmax (GEMMA2.md §2.2.4-§2.2.7).
 */
import type { AttentionArgs } from "../kernels.js";

export function attention(a: AttentionArgs): void {
  const { out, q, newK, newV, pastK, pastV, pastCapacity, startPos, seqLen, nHeads, nKvHeads, headDim, scale, softcap, window } = a;
  const qWidth = nHeads * headDim;
  const kvWidth = nKvHeads * headDim;
  const group = nHeads / nKvHeads;
  const scores = new Float64Array(startPos + seqLen);
  for (let s = 0; s < seqLen; s++) {
    const pos = startPos + s;
    const first = window === null ? 0 : Math.max(0, pos - window + 1);
    for (let h = 0; h < nHeads; h++) {
      // Consecutive query heads share one KV head (HF repeat_kv).
      const kvOffset = Math.floor(h / group) * headDim;
      const qOffset = s * qWidth + h * headDim;
      let max = -Infinity;
      for (let j = first; j <= pos; j++) {
        const fromPast = j < startPos;
        const keys = fromPast ? pastK : newK;
        const kBase = (fromPast ? j % pastCapacity : j - startPos) * kvWidth + kvOffset;
        let dot = 0;
        for (let d = 0; d < headDim; d++) dot += q[qOffset + d]! * keys[kBase + d]!;
        let score = dot * scale;
        if (softcap !== null) score = softcap * Math.tanh(score / softcap);
        scores[j - first] = score;
        if (score > max) max = score;
      }
      let sum = 0;
      for (let j = first; j <= pos; j++) {
        const e = Math.exp(scores[j - first]! - max);
        scores[j - first] = e;
        sum += e;
      }
      const oOffset = s * qWidth + h * headDim;
      out.fill(0, oOffset, oOffset + headDim);
      for (let j = first; j <= pos; j++) {
        const p = scores[j - first]! / sum;
        const fromPast = j < startPos;
        const values = fromPast ? pastV : newV;
        const vBase = (fromPast ? j % pastCapacity : j - startPos) * kvWidth + kvOffset;
        for (let d = 0; d < headDim; d++) out[oOffset + d]! += p * values[vBase + d]!;
      }
    }
  }
}
