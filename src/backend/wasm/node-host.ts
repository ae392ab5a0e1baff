/**
 * The WebAssembly backend's Node adapter: the compiled kernels read from wasm/ (built by
 * `npm run build:wasm`) and kernel workers on worker_threads.
 */
import { readFile } from "node:fs/promises";
import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";
import type { KernelWorker, KernelWorkerInit, KernelWorkerMessage, WasmHost } from "./host.js";

const compiled = new Map<string, Promise<WebAssembly.Module>>();

/** The compiled module (threaded: on shared memory; relaxed: relaxed SIMD), or an Error saying why not. */
export function kernelModule(threaded = false, relaxed = false): Promise<WebAssembly.Module> {
  const file = `kernels${relaxed ? "-relaxed" : ""}${threaded ? "-mt" : ""}.wasm`;
  let module = compiled.get(file);
  if (!module) {
    module = readFile(new URL(`../../../wasm/${file}`, import.meta.url)).then(
      (bytes) => WebAssembly.compile(bytes),
      (e: NodeJS.ErrnoException) => {
        throw new Error(`wasm/${file} is missing (${e.code ?? e.message}); run npm run build:wasm`);
      },
    );
    compiled.set(file, module);
  }
  return module;
}

/**
 * From dist the worker is plain JS; from the sources (tests, tsx) it must register tsx first.
 * Workers start with no flags of the parent's (`execArgv: []`): a script run as
 * `node --input-type=module -e …` would otherwise pass a flag that workers refuse.
 */
function startNodeWorker(workerData: KernelWorkerInit): Worker {
  if (!import.meta.url.endsWith(".ts")) return new Worker(new URL("./worker.js", import.meta.url), { workerData, execArgv: [] });
  const tsx = import.meta.resolve("tsx/esm/api");
  const script = new URL("./worker.ts", import.meta.url).href;
  const bootstrap = `import(${JSON.stringify(tsx)}).then((api) => { api.register(); return import(${JSON.stringify(script)}); })`;
  return new Worker(bootstrap, { eval: true, workerData, execArgv: [] });
}

export const nodeWasmHost: WasmHost = {
  cores: () => availableParallelism(),
  canShareMemory: () => typeof SharedArrayBuffer === "function",
  loadModule: kernelModule,
  startWorker(init: KernelWorkerInit): KernelWorker {
    const worker = startNodeWorker(init);
    // Idle workers must not keep the process alive.
    worker.unref();
    return {
      // Each listener removes the other: a load sends hundreds of requests.
      request: (message: KernelWorkerMessage) =>
        new Promise<void>((resolve, reject) => {
          const done = () => {
            worker.off("error", failed);
            resolve();
          };
          const failed = (e: Error) => {
            worker.off("message", done);
            reject(e);
          };
          worker.once("message", done);
          worker.once("error", failed);
          worker.postMessage(message);
        }),
      post: (message) => worker.postMessage(message),
      terminate: async () => void (await worker.terminate()),
    };
  },
};
