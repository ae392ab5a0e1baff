/**
 * The WebAssembly backend's browser adapter: kernels fetched from the page's server and kernel
 * workers as Web Workers (module workers running kernel-worker.js). Sharing memory with workers
 * needs cross-origin isolation (COOP + COEP headers); without it the backend runs on one thread.
 */
import type { KernelWorker, KernelWorkerInit, KernelWorkerMessage, WasmHost } from "../backend/wasm/host.js";

export interface BrowserWasmHostOptions {
  /** Where kernels.wasm, kernels-mt.wasm and their relaxed-SIMD builds are served. */
  wasmBase: URL;
  /** The bundled kernel worker script (kernel-worker.ts). */
  kernelWorker: URL;
}

export function browserWasmHost({ wasmBase, kernelWorker }: BrowserWasmHostOptions): WasmHost {
  const modules = new Map<string, Promise<WebAssembly.Module>>();
  return {
    cores: () => (typeof navigator === "object" && navigator.hardwareConcurrency) || 1,
    canShareMemory: () => globalThis.crossOriginIsolated === true && typeof SharedArrayBuffer === "function",
    loadModule(threaded, relaxed) {
      const file = `kernels${relaxed ? "-relaxed" : ""}${threaded ? "-mt" : ""}.wasm`;
      let module = modules.get(file);
      if (!module) {
        const url = new URL(file, wasmBase);
        module = fetch(url).then(async (response) => {
          if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
          return WebAssembly.compile(await response.arrayBuffer());
        });
        modules.set(file, module);
      }
      return module;
    },
    startWorker(init: KernelWorkerInit): KernelWorker {
      const worker = new Worker(kernelWorker, { type: "module", name: `gemma-ts kernels ${init.index}` });
      worker.postMessage(init);
      return {
        request: (message: KernelWorkerMessage) =>
          new Promise<void>((resolve, reject) => {
            const done = () => {
              worker.removeEventListener("message", done);
              worker.removeEventListener("error", failed);
              resolve();
            };
            const failed = (e: ErrorEvent) => {
              worker.removeEventListener("message", done);
              reject(new Error(`kernel worker ${init.index} failed: ${e.message}`));
            };
            worker.addEventListener("message", done);
            worker.addEventListener("error", failed);
            worker.postMessage(message);
          }),
        post: (message) => worker.postMessage(message),
        terminate: async () => worker.terminate(),
      };
    },
  };
}
