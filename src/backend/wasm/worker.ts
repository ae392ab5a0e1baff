/** A kernel worker under Node's worker_threads (see worker-loop.ts for what it does). */
import { parentPort, workerData } from "node:worker_threads";
import type { KernelWorkerInit } from "./host.js";
import { kernelWorkerHandler } from "./worker-loop.js";

parentPort!.on(
  "message",
  kernelWorkerHandler(
    workerData as KernelWorkerInit,
    (arenas) => parentPort!.postMessage(arenas),
    (loop) => void setImmediate(loop),
  ),
);
