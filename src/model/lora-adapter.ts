/**
 * A LoRA update merged into the base weights at load time: W' = W + scale · B · A, row by row
 * (`loadModel(dir, { lora })`; the adapter folder is read by lora-adapter-folder.ts).
 */

/** A weight's low-rank update from an adapter: ΔW = scale · B · A. */
export interface LoraDelta {
  a: Float32Array;
  b: Float32Array;
  rank: number;
  scale: number;
}

/** W + scale · B · A for a [rows, cols] weight given as f32 rows. */
export function mergeLoraRow(row: Float32Array, r: number, delta: LoraDelta, cols: number): void {
  const { a, b, rank, scale } = delta;
  for (let k = 0; k < rank; k++) {
    const coefficient = scale * b[r * rank + k]!;
    if (coefficient === 0) continue;
    for (let c = 0; c < cols; c++) row[c] = row[c]! + coefficient * a[k * cols + c]!;
  }
}
