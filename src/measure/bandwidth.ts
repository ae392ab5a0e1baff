/**
 * Memory read bandwidth of this machine, measured the way decode reads weights: a WebAssembly SIMD
 * kernel streams a buffer much larger than the caches, split across the same worker pool.
 */
import { WasmArena } from "../backend/wasm/arena.js";
import { kernelModule, nodeWasmHost } from "../backend/wasm/node-host.js";
import { KernelPool } from "../backend/wasm/pool.js";
import { streamOutBytes, streamPass } from "../backend/wasm/stream-pass.js";

/** Best of `repeats` passes over `bytes` (default 1 GiB), in GB/s (10^9 bytes per second). */
export async function measureReadBandwidth(threads: number, bytes = 1024 ** 3, repeats = 5): Promise<number> {
  const threaded = threads > 1 && typeof SharedArrayBuffer === "function";
  const module = await kernelModule(threaded);
  const arena = new WasmArena(module, threaded);
  // The buffer, then room for the rows' sums.
  const base = arena.scratch(bytes + streamOutBytes(bytes));
  // Touch every page so the first pass does not measure page faults.
  new Uint8Array(arena.memory.buffer, base, bytes).fill(1);
  const pool = threaded ? KernelPool.create(nodeWasmHost, module, threads - 1) : null;
  try {
    if (pool) {
      await pool.register([arena.memory]);
      pool.start();
    }
    let best = 0;
    for (let i = 0; i < repeats; i++) {
      const started = performance.now();
      const read = streamPass(arena, pool, base, base + bytes, base + bytes);
      const seconds = (performance.now() - started) / 1000;
      best = Math.max(best, read / seconds / 1e9);
    }
    return best;
  } finally {
    await pool?.terminate();
  }
}
