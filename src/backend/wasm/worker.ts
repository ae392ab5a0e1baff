/**
 * A kernel worker: instantiates the threaded kernels on every arena's shared memory, then loops
 * waiting on the control block and computes its slice of each job. Node worker_threads adapter.
 */
import { parentPort, workerData } from "node:worker_threads";
import { ARENA, DONE, FAILED, GENERATION, THREADS, runSlice, type SliceKernels } from "./pool-protocol.js";

const { module, control: controlBuffer, index } = workerData as { module: WebAssembly.Module; control: SharedArrayBuffer; index: number };
const control = new Uint32Array(controlBuffer);
const signals = new Int32Array(controlBuffer);
const arenas: SliceKernels[] = [];

// Arenas arrive as messages before "start"; after it the loop blocks on the control block.
parentPort!.on("message", (message: { memory: WebAssembly.Memory } | "start") => {
  if (message === "start") return void setImmediate(loop);
  arenas.push(new WebAssembly.Instance(module, { env: { memory: message.memory, abort: () => {} } }).exports as unknown as SliceKernels);
  parentPort!.postMessage(arenas.length);
});

function loop(): void {
  // Generation 0 is "no job yet": a job posted before this loop began is still seen as new.
  let seen = 0;
  for (;;) {
    while (Atomics.load(signals, GENERATION) === seen) Atomics.wait(signals, GENERATION, seen);
    seen = Atomics.load(signals, GENERATION);
    try {
      runSlice(arenas[control[ARENA]!]!, control, index);
    } catch {
      Atomics.store(signals, FAILED, index);
    }
    // The last worker to finish wakes the main thread.
    if (Atomics.add(signals, DONE, 1) + 1 === control[THREADS]! - 1) Atomics.notify(signals, DONE);
  }
}
