/**
 * Memory read bandwidth of this machine, measured the way decode reads weights: a WebAssembly SIMD
 * kernel streams a buffer much larger than the caches, split across the same worker pool.
 */
import { WasmArena } from "../backend/wasm/arena.js";
import { kernelModule, nodeWasmHost } from "../backend/wasm/node-host.js";
import { KernelPool } from "../backend/wasm/pool.js";

/** Best of `repeats` passes over `bytes` (default 1 GiB), in GB/s (10^9 bytes per second). */
export async function measureReadBandwidth(threads: number, bytes = 1024 ** 3, repeats = 5): Promise<number> {
  const threaded = threads > 1 && typeof SharedArrayBuffer === "function";
  const module = await kernelModule(threaded);
  const arena = new WasmArena(module, threaded);
  const cols = 16384; // 64 KiB rows: long sequential runs, many rows to split.
  const rows = Math.floor(bytes / (cols * 4));
  const base = arena.scratch(rows * cols * 4 + rows * 4);
  const out = base + rows * cols * 4;
  // Touch every page so the first pass does not measure page faults.
  new Uint8Array(arena.memory.buffer, base, rows * cols * 4).fill(1);
  const pool = threaded ? KernelPool.create(nodeWasmHost, module, threads - 1) : null;
  try {
    if (pool) {
      await pool.register([arena.memory]);
      pool.start();
    }
    let best = 0;
    for (let i = 0; i < repeats; i++) {
      const started = performance.now();
      if (pool) pool.run(arena.memory, arena.kernels, "streamRows", out, 0, base, rows, cols, 1);
      else arena.kernels.streamRows(out, 0, base, rows, cols, 1, rows);
      const seconds = (performance.now() - started) / 1000;
      best = Math.max(best, (rows * cols * 4) / seconds / 1e9);
    }
    return best;
  } finally {
    await pool?.terminate();
  }
}
