/**
 * Loads the compiled AssemblyScript kernels (wasm/kernels.wasm, built by `npm run build:wasm`).
 * Node adapter: a browser build will fetch the same file.
 */
import { readFile } from "node:fs/promises";
import type { SliceKernels } from "./pool-protocol.js";

export interface KernelExports extends SliceKernels {
  /** Quantizes seqLen rows of f32 activations to 36-byte int8 blocks for matmulQ8_0. */
  quantizeActivations(x: number, out: number, cols: number, seqLen: number): void;
}

const compiled = new Map<boolean, Promise<WebAssembly.Module>>();

/** The compiled module (the threaded build uses shared memory), or an Error saying why not. */
export function kernelModule(threaded = false): Promise<WebAssembly.Module> {
  const file = threaded ? "kernels-mt.wasm" : "kernels.wasm";
  let module = compiled.get(threaded);
  if (!module) {
    module = readFile(new URL(`../../../wasm/${file}`, import.meta.url)).then(
      (bytes) => WebAssembly.compile(bytes),
      (e: NodeJS.ErrnoException) => {
        throw new Error(`wasm/${file} is missing (${e.code ?? e.message}); run npm run build:wasm`);
      },
    );
    compiled.set(threaded, module);
  }
  return module;
}

export function instantiate(module: WebAssembly.Module, memory: WebAssembly.Memory): KernelExports {
  return new WebAssembly.Instance(module, { env: { memory, abort: () => {} } }).exports as unknown as KernelExports;
}
