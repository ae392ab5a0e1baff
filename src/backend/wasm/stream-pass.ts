/**
 * One pass of the row-streaming kernel over a range of an arena's memory, on the pool's threads
 * where it can run there: how both the bandwidth probe and Kernels.weightReadGBps read memory.
 */
import type { WasmArena } from "./arena.js";
import type { KernelPool } from "./pool.js";

/** Floats per streamed row: 64 KiB, long sequential runs, many rows to share between threads. */
const STREAM_ROW_FLOATS = 16384;

/** Bytes of the rows' sums a pass over `bytes` writes at `out`. */
export const streamOutBytes = (bytes: number) => 4 * Math.floor(bytes / (4 * STREAM_ROW_FLOATS));

/** Reads the whole rows of [start, end) once, their sums to `out` (streamOutBytes); returns the bytes read. */
export function streamPass(arena: WasmArena, pool: KernelPool | null, start: number, end: number, out: number): number {
  const rows = Math.floor((end - start) / (4 * STREAM_ROW_FLOATS));
  if (rows === 0) return 0;
  if (pool?.canRun(arena.memory)) pool.run(arena.memory, arena.kernels, "streamRows", out, 0, start, rows, STREAM_ROW_FLOATS, 1);
  else arena.kernels.streamRows(out, 0, start, rows, STREAM_ROW_FLOATS, 1, rows);
  return rows * 4 * STREAM_ROW_FLOATS;
}
