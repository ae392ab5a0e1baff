/** A kernel worker as a Web Worker: the first message is its init, then arenas and "start" (worker-loop.ts). */
import type { KernelWorkerInit, KernelWorkerMessage } from "../backend/wasm/host.js";
import { kernelWorkerHandler } from "../backend/wasm/worker-loop.js";

let handle: ((message: KernelWorkerMessage) => void) | null = null;

self.onmessage = (event: MessageEvent<KernelWorkerInit | KernelWorkerMessage>) => {
  if (handle) return handle(event.data as KernelWorkerMessage);
  handle = kernelWorkerHandler(
    event.data as KernelWorkerInit,
    (arenas) => self.postMessage(arenas),
    (loop) => void setTimeout(loop, 0),
  );
};
