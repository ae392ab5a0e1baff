/**
 * The body of a kernel worker, shared by the Node and browser worker scripts: instantiate the
 * threaded kernels on every arena's shared memory as it arrives, then after "start" loop forever
 * waiting on the control block and computing this worker's slice of each job.
 */
import type { KernelWorkerInit, KernelWorkerMessage } from "./host.js";
import { instantiate, type KernelExports } from "./module.js";
import { ARENA, DONE, FAILED, GENERATION, SPIN_POLLS, THREADS, runSlice } from "./pool-protocol.js";

/**
 * Returns the worker's message handler. `reply` answers an arena message; `schedule` runs the
 * blocking loop after the current message (so the "start" message itself is acknowledged first).
 */
export function kernelWorkerHandler(
  init: KernelWorkerInit,
  reply: (arenas: number) => void,
  schedule: (loop: () => void) => void,
): (message: KernelWorkerMessage) => void {
  const control = new Uint32Array(init.control);
  const signals = new Int32Array(init.control);
  const arenas: KernelExports[] = [];

  const loop = (): void => {
    // Generation 0 is "no job yet": a job posted before this loop began is still seen as new.
    let seen = 0;
    for (;;) {
      // Poll a while before sleeping: a decode step posts a job every few hundred microseconds, and
      // waking from Atomics.wait costs tens of them.
      for (let spins = 0; Atomics.load(signals, GENERATION) === seen; spins++) {
        if (spins >= SPIN_POLLS) Atomics.wait(signals, GENERATION, seen);
      }
      seen = Atomics.load(signals, GENERATION);
      try {
        runSlice(arenas[control[ARENA]!]!, control, init.index);
      } catch {
        Atomics.store(signals, FAILED, init.index);
      }
      // The last worker to finish wakes the main thread.
      if (Atomics.add(signals, DONE, 1) + 1 === control[THREADS]! - 1) Atomics.notify(signals, DONE);
    }
  };

  return (message) => {
    if (message === "start") return schedule(loop);
    if ("quantize" in message) {
      const { arena, dst, src, rows, cols, type, q8 } = message.quantize;
      arenas[arena]!.quantizeRows(dst, src, rows, cols, type, q8);
    } else {
      arenas.push(instantiate(init.module, message.memory));
    }
    reply(arenas.length);
  };
}
