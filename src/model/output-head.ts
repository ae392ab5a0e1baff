/** The tied output head shared by every family: final RMSNorm, h Eᵀ (no sqrt(d) scale), final soft-cap (GEMMA2.md §2.3-§2.4). */
import type { Kernels, Weight } from "../backend/kernels.js";

export interface OutputHead {
  dModel: number;
  vocabSize: number;
  rmsNormEps: number;
  finalSoftcap: number | null;
}

/** Logits of every row of h [seqLen, dModel] ("all") or of the last one ("last"). */
export function outputLogits(k: Kernels, c: OutputHead, h: Float32Array, seqLen: number, logitsFor: "all" | "last", finalNorm: Float32Array, embedding: Weight): Float32Array {
  const rows = logitsFor === "all" ? seqLen : 1;
  const last = logitsFor === "all" ? h : h.subarray((seqLen - 1) * c.dModel);
  const normed = new Float32Array(rows * c.dModel);
  k.rmsnorm(normed, last, finalNorm, rows, c.dModel, c.rmsNormEps);
  const logits = new Float32Array(rows * c.vocabSize);
  k.matmul(logits, normed, embedding, rows);
  if (c.finalSoftcap !== null) k.softcap(logits, logits.length, c.finalSoftcap);
  return logits;
}
