/** Instantiating the compiled AssemblyScript kernels on a memory (the module comes from a WasmHost). */
import type { SliceKernels } from "./pool-protocol.js";

export interface KernelExports extends SliceKernels {
  /** Quantizes seqLen rows of f32 activations to int8 blocks (block-layout.ts ACTIVATION_Q8) for the block matmuls. */
  quantizeActivations(x: number, out: number, cols: number, seqLen: number): void;
}

export function instantiate(module: WebAssembly.Module, memory: WebAssembly.Memory): KernelExports {
  return new WebAssembly.Instance(module, { env: { memory, abort: () => {} } }).exports as unknown as KernelExports;
}
