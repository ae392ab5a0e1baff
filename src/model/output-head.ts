/** The tied output head shared by every family: final RMSNorm, h Eᵀ (no sqrt(d) scale), final soft-cap (GEMMA2.md §2.3-§2.4). */
import type { Kernels, Weight } from "../backend/kernels.js";
import { GenerationError } from "../errors.js";

export interface OutputHead {
  dModel: number;
  vocabSize: number;
  rmsNormEps: number;
  finalSoftcap: number | null;
}

/** Logits of every row of h [seqLen, dModel] ("all") or of the last one ("last"). */
export function outputLogits(
  k: Kernels,
  c: OutputHead,
  h: Float32Array,
  seqLen: number,
  logitsFor: "all" | "last",
  finalNorm: Float32Array,
  embedding: Weight,
): Float32Array {
  const rows = logitsFor === "all" ? seqLen : 1;
  const last = logitsFor === "all" ? h : h.subarray((seqLen - 1) * c.dModel);
  const normed = new Float32Array(rows * c.dModel);
  k.rmsnorm(normed, last, finalNorm, rows, c.dModel, c.rmsNormEps);
  const logits = new Float32Array(rows * c.vocabSize);
  k.matmul(logits, normed, embedding, rows);
  if (c.finalSoftcap !== null) k.softcap(logits, logits.length, c.finalSoftcap);
  refuseNonFinite(logits, c.vocabSize);
  return logits;
}

/**
 * NaN or Infinity in the logits must never become a sampled token (argmax over NaN is token 0) or
 * a perplexity of NaN: the weights or the way they were read are wrong, and the user must hear so.
 */
function refuseNonFinite(logits: Float32Array, vocab: number): void {
  for (let i = 0; i < logits.length; i++) {
    // x - x is 0 for finite x and NaN for NaN and ±Infinity: one test for both.
    if (logits[i]! - logits[i]! !== 0) {
      throw new GenerationError(
        `the model computed a non-finite logit (${logits[i]}) for token ${i % vocab} in row ${Math.floor(i / vocab)}: its weights hold ` +
          `NaN/Infinity or values that overflow (a corrupt or wrongly converted checkpoint, or one read at wrong offsets)`,
      );
    }
  }
}
