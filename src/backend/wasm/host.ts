/**
 * What the WebAssembly backend needs from its platform: the compiled kernel module, kernel worker
 * threads and the core count. Node: node-host.ts (fs + worker_threads); browsers:
 * src/browser/wasm-host.ts (fetch + Web Workers). The backend itself uses neither directly.
 */
export interface KernelWorkerInit {
  module: WebAssembly.Module;
  /** The pool's control block (pool-protocol.ts). */
  control: SharedArrayBuffer;
  /** This worker's slice index (the main thread is 0). */
  index: number;
}

/**
 * Rows src..src + rows of an arena quantized into dst by the worker (KernelExports.quantizeRows),
 * while a model loads.
 */
export interface QuantizeJob {
  arena: number;
  dst: number;
  src: number;
  rows: number;
  cols: number;
  type: number;
  q8: number;
}

/**
 * After its init a kernel worker takes arena memories and quantization jobs (each answered by one
 * reply), then "start".
 */
export type KernelWorkerMessage = { memory: WebAssembly.Memory } | { quantize: QuantizeJob } | "start";

export interface KernelWorker {
  /** Sends a message and resolves on the worker's reply (rejects if the worker fails). */
  request(message: KernelWorkerMessage): Promise<void>;
  post(message: KernelWorkerMessage): void;
  terminate(): Promise<void>;
}

export interface WasmHost {
  /** Logical cores: the default thread count. */
  cores(): number;
  /** Whether memories can be shared with workers (browsers: only when cross-origin isolated). */
  canShareMemory(): boolean;
  /**
   * The kernels compiled; `threaded` picks the shared-memory build, `relaxed` the relaxed-SIMD one
   * (asked for only when the engine validates relaxed SIMD). Rejects with a reason.
   */
  loadModule(threaded: boolean, relaxed: boolean): Promise<WebAssembly.Module>;
  startWorker(init: KernelWorkerInit): KernelWorker;
}
