/** Instantiating the compiled AssemblyScript kernels on a memory (the module comes from a WasmHost). */
import { relaxedDotFromPairs } from "./features.js";
import type { SliceKernels } from "./pool-protocol.js";

export interface KernelExports extends SliceKernels {
  /**
   * Quantizes seqLen rows of f32 activations to int8 blocks for the block matmuls, in the layout
   * the kernel for Q8_0 (q8 = 1) or Q4_0 (q8 = 0) weights reads (block-layout.ts: ACTIVATION_Q8,
   * or ACTIVATION_SPLIT for relaxed SIMD's Q8_0 kernel).
   */
  quantizeActivations(x: number, out: number, cols: number, seqLen: number, q8: number): void;
  /** RMSNorm of seqLen rows of dim floats, bit for bit as the TypeScript reference (jsKernels.rmsnorm). */
  rmsnormRows(out: number, x: number, gain: number, seqLen: number, dim: number, eps: number): void;
  /** Quantizes seqLen rows of f32 activations into K activation blocks (block-layout.ts ACTIVATION_K) for the K-quant matmuls. */
  quantizeActivationsK(x: number, out: number, cols: number, seqLen: number): void;
  /** Rearranges a Q8_0 (q8 = 1) or Q4_0 matrix in place into groups of four rows (arena.ts). */
  packRows4(w: number, rows: number, cols: number, q8: number, scratch: number): void;
  /** out = scale · row `row` of a packed Q8_0 (q8 = 1) or Q4_0 matrix, as f32. */
  embedRow(out: number, w: number, row: number, cols: number, q8: number, scale: number): void;
  /** Rearranges a float matrix (elementBytes 4: f32, 2: bf16/f16; cols a multiple of 4) in place into groups of four rows (arena.ts). */
  packFloatRows4(w: number, rows: number, cols: number, elementBytes: number, scratch: number): void;
  /** out = scale · row `row` of a packed float matrix (kind 0: f32, 1: bf16, 2: f16), the product in f64. */
  embedFloatRow(out: number, w: number, row: number, rows: number, cols: number, kind: number, scale: number): void;
  /** Rearranges a K-quant matrix (super-blocks of blockBytes) in place into groups of four rows (arena.ts). */
  packKRows4(w: number, rows: number, cols: number, blockBytes: number, scratch: number): void;
  /** out = scale · row `row` of a packed K-quant matrix (kind 4: Q4_K, 5: Q5_K, 6: Q6_K), as f32. */
  embedKRow(out: number, w: number, row: number, cols: number, kind: number, scale: number): void;
  /**
   * Quantizes rows of f32 (type 0), bf16 (1) or f16 (2) values into row-major Q8_0 (q8 = 1) or
   * Q4_0 blocks, bit for bit as src/weights/q8_0.ts and q4_0.ts do.
   */
  quantizeRows(dst: number, src: number, rows: number, cols: number, type: number, q8: number): void;
  /** RoPE in place by a cos/sin table (assembly/rows.ts), bit for bit as jsKernels.rope. */
  ropeRows(x: number, cos: number, sin: number, seqLen: number, nHeads: number, headDim: number, half: number): void;
  /** out += x over n floats. */
  addRows(out: number, x: number, n: number): void;
  /** x[s, i] += bias[i]. */
  addBiasRows(x: number, bias: number, seqLen: number, dim: number): void;
  /**
   * The int8 matmuls (Q8_0, Q4_0, Q4_K, Q5_K) in the 16-bit pair-sum form of the relaxed dot (on)
   * or its 32-bit form (features.ts relaxedDotFromPairs).
   */
  usePairDots(on: number): void;
}

/** An instance of the kernels on `memory`, its int8 dot in the form that is faster on this CPU. */
export function instantiate(module: WebAssembly.Module, memory: WebAssembly.Memory): KernelExports {
  const kernels = new WebAssembly.Instance(module, { env: { memory, abort: () => {} } }).exports as unknown as KernelExports;
  kernels.usePairDots(relaxedDotFromPairs() ? 1 : 0);
  return kernels;
}
