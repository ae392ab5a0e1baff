/**
 * A pool of kernel workers sharing the arenas' WebAssembly memories: a matmul's rows are split
 * between the main thread and the workers, which wait on a shared control block (no message per
 * job). The forward pass stays synchronous: the main thread blocks until every slice is done.
 */
import { GemmaError } from "../../errors.js";
import type { KernelWorker, QuantizeJob, WasmHost } from "./host.js";
import {
  ARENA,
  FAILED,
  CONTROL_INTS,
  COLS,
  DONE,
  GENERATION,
  KERNEL,
  KERNELS,
  OUT,
  ROWS,
  SCRATCH,
  SCRATCH_STRIDE,
  SEQ_LEN,
  SPIN_POLLS,
  THREADS,
  W,
  X,
  runSlice,
  type KernelName,
  type SliceKernels,
} from "./pool-protocol.js";

/** A slice takes milliseconds; this long means a worker is gone. */
const WORKER_TIMEOUT_MS = 60_000;

export class KernelPool {
  private readonly control: Uint32Array;
  private readonly signals: Int32Array;
  /** Memories the workers have instantiated the kernels on; a job names one by its index here. */
  private readonly memories: WebAssembly.Memory[] = [];
  private started = false;

  private constructor(
    private readonly workers: KernelWorker[],
    buffer: SharedArrayBuffer,
  ) {
    this.control = new Uint32Array(buffer);
    this.signals = new Int32Array(buffer);
  }

  /** Starts `count` workers of the host on the threaded kernel module. */
  static create(host: WasmHost, module: WebAssembly.Module, count: number): KernelPool {
    const buffer = new SharedArrayBuffer(CONTROL_INTS * 4);
    const workers = Array.from({ length: count }, (_, i) => host.startWorker({ module, control: buffer, index: i + 1 }));
    return new KernelPool(workers, buffer);
  }

  get threads(): number {
    return this.workers.length + 1;
  }

  /** Sends the memories not yet sent to every worker (before `start`); resolves when all have instantiated them. */
  async register(memories: WebAssembly.Memory[]): Promise<void> {
    if (this.started) return;
    for (const memory of memories) {
      if (this.memories.includes(memory)) continue;
      await Promise.all(this.workers.map((worker) => worker.request({ memory })));
      this.memories.push(memory);
    }
  }

  /** Whether the workers can take quantization jobs on this memory: registered, not yet started. */
  canQuantize(memory: WebAssembly.Memory): boolean {
    return !this.started && this.memories.includes(memory);
  }

  /** Before `start`: worker `i` (0-based) quantizes rows of a registered memory. */
  async quantize(i: number, memory: WebAssembly.Memory, job: Omit<QuantizeJob, "arena">): Promise<void> {
    if (!this.canQuantize(memory)) throw new GemmaError("kernel workers can quantize only registered arenas before they start");
    await this.workers[i]!.request({ quantize: { ...job, arena: this.memories.indexOf(memory) } });
  }

  /** From now on workers block on the control block; arenas made later run on the main thread. */
  start(): void {
    if (this.started) return;
    this.started = true;
    for (const worker of this.workers) worker.post("start");
  }

  /** Whether jobs on this memory can run on the workers (registered before `start`). */
  canRun(memory: WebAssembly.Memory): boolean {
    return this.started && this.memories.includes(memory);
  }

  run(
    memory: WebAssembly.Memory,
    kernels: SliceKernels,
    kernel: KernelName,
    out: number,
    x: number,
    w: number,
    rows: number,
    cols: number,
    seqLen: number,
    scratch = 0,
    scratchStride = 0,
  ): void {
    const c = this.control;
    c[KERNEL] = KERNELS.indexOf(kernel);
    const arena = this.memories.indexOf(memory);
    if (arena < 0) throw new GemmaError("a kernel job on a memory the workers do not have");
    c[ARENA] = arena;
    c[OUT] = out;
    c[X] = x;
    c[W] = w;
    c[ROWS] = rows;
    c[COLS] = cols;
    c[SEQ_LEN] = seqLen;
    c[SCRATCH] = scratch;
    c[SCRATCH_STRIDE] = scratchStride;
    c[THREADS] = this.threads;
    Atomics.store(this.signals, DONE, 0);
    Atomics.add(this.signals, GENERATION, 1);
    Atomics.notify(this.signals, GENERATION);
    runSlice(kernels, c, 0);
    const deadline = Date.now() + WORKER_TIMEOUT_MS;
    let spins = 0;
    for (let done = Atomics.load(this.signals, DONE); done < this.workers.length; done = Atomics.load(this.signals, DONE)) {
      if (spins++ < SPIN_POLLS) continue;
      if (Atomics.wait(this.signals, DONE, done, 1000) === "timed-out" && Date.now() > deadline) {
        throw new GemmaError(`a kernel worker did not finish a matmul within ${WORKER_TIMEOUT_MS / 1000} s; run with --threads 1`);
      }
    }
    const failed = Atomics.exchange(this.signals, FAILED, 0);
    if (failed !== 0) throw new GemmaError(`kernel worker ${failed} failed a matmul; run with --threads 1`);
  }

  async terminate(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
