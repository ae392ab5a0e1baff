/**
 * The shared control block between the main thread and kernel workers: the main thread writes a
 * job, bumps GENERATION and wakes the workers; each computes its slice of rows and counts itself
 * in DONE. Pointers are wasm32 addresses (< 4 GiB), so they are stored as unsigned 32-bit values.
 */
import { BLOCK_LAYOUTS, blockRowBytes, type BlockDtype } from "../../weights/block-layout.js";

export const GENERATION = 0;
export const DONE = 1;
export const KERNEL = 2;
export const ARENA = 3;
export const OUT = 4;
export const X = 5;
export const W = 6;
export const ROWS = 7;
export const COLS = 8;
export const SEQ_LEN = 9;
export const THREADS = 10;
/** Set by a worker whose slice threw; the main thread reports it after the job. */
export const FAILED = 11;
/** Prompt tiles' scratch (Q4_0 matmuls): thread i's starts at SCRATCH + i · SCRATCH_STRIDE. */
export const SCRATCH = 12;
export const SCRATCH_STRIDE = 13;
export const CONTROL_INTS = 16;
/** Polls of the control block before a waiting thread sleeps (tens to hundreds of microseconds). */
export const SPIN_POLLS = 20_000;

export const KERNELS = [
  "matmulF32",
  "matmulBf16",
  "matmulF16",
  "matmulF32Rows4",
  "matmulBf16Rows4",
  "matmulF16Rows4",
  "matmulQ8_0",
  "matmulQ4_0",
  "matmulQ4_K",
  "matmulQ5_K",
  "matmulQ6_K",
  "streamRows",
  "attendItems",
  "recurrenceItems",
  "gegluTanh",
  "softcapInPlace",
  "quantizeActivationTokens",
  "rmsnormRowsAt",
] as const;
export type KernelName = (typeof KERNELS)[number];

/** The matmul kernel of each block type. */
export const BLOCK_KERNEL: Readonly<Record<BlockDtype, KernelName>> = {
  q8_0: "matmulQ8_0",
  q4_0: "matmulQ4_0",
  q4_k: "matmulQ4_K",
  q5_k: "matmulQ5_K",
  q6_k: "matmulQ6_K",
};

/** The element-wise kernels: a job's ROWS elements split between threads. */
export type ElementwiseKernel = "gegluTanh" | "softcapInPlace";
/** The kernels whose jobs are work items (ROWS of them) with their parameters in memory (X). */
export type ItemKernel = "attendItems" | "recurrenceItems";
/** The kernels whose jobs are ROWS rows (tokens) of activations, split evenly between threads. */
export type RowKernel = "quantizeActivationTokens" | "rmsnormRowsAt";
export type MatmulKernel = Exclude<KernelName, ItemKernel | ElementwiseKernel | RowKernel>;

/** Bytes of one weight row, per matmul kernel (the block kernels: block-layout.ts). */
export function rowBytes(kernel: MatmulKernel, cols: number): number {
  if (kernel === "matmulF32" || kernel === "matmulF32Rows4" || kernel === "streamRows") return cols * 4;
  if (kernel === "matmulBf16" || kernel === "matmulF16" || kernel === "matmulBf16Rows4" || kernel === "matmulF16Rows4") return cols * 2;
  const dtype = (Object.keys(BLOCK_KERNEL) as BlockDtype[]).find((d) => BLOCK_KERNEL[d] === kernel)!;
  return blockRowBytes(BLOCK_LAYOUTS[dtype], cols);
}

/** Rows [start, end) of thread `index` of `threads`, in multiples of 4 (the kernels' row block). */
export function rowSlice(rows: number, threads: number, index: number): [number, number] {
  const blocks = Math.ceil(rows / 4);
  const start = Math.min(rows, Math.floor((blocks * index) / threads) * 4);
  const end = Math.min(rows, Math.floor((blocks * (index + 1)) / threads) * 4);
  return [start, end];
}

export interface SliceKernels {
  matmulF32(out: number, x: number, w: number, rows: number, cols: number, seqLen: number, outStride: number): void;
  matmulBf16(out: number, x: number, w: number, rows: number, cols: number, seqLen: number, outStride: number): void;
  matmulF16(out: number, x: number, w: number, rows: number, cols: number, seqLen: number, outStride: number): void;
  /** The same over float matrices packed in groups of four rows (arena.ts floatPacked; assembly/float-rows.ts). */
  matmulF32Rows4(out: number, x: number, w: number, rows: number, cols: number, seqLen: number, outStride: number): void;
  matmulBf16Rows4(out: number, x: number, w: number, rows: number, cols: number, seqLen: number, outStride: number): void;
  matmulF16Rows4(out: number, x: number, w: number, rows: number, cols: number, seqLen: number, outStride: number): void;
  streamRows(out: number, x: number, w: number, rows: number, cols: number, seqLen: number, outStride: number): void;
  matmulQ8_0(out: number, xq: number, w: number, rows: number, cols: number, seqLen: number, outStride: number): void;
  /** `scratch`: this thread's PROMPT_TILE.blockBytes per block column (prompt tiles, block-layout.ts). */
  matmulQ4_0(out: number, xq: number, w: number, rows: number, cols: number, seqLen: number, outStride: number, scratch: number): void;
  matmulQ4_K(out: number, xq: number, w: number, rows: number, cols: number, seqLen: number, outStride: number): void;
  matmulQ5_K(out: number, xq: number, w: number, rows: number, cols: number, seqLen: number, outStride: number): void;
  matmulQ6_K(out: number, xq: number, w: number, rows: number, cols: number, seqLen: number, outStride: number): void;
  /** Attention work items [from, to) of the job whose parameters are at `params` (assembly/kernels.ts). */
  attendItems(params: number, from: number, to: number, thread: number): void;
  /** Kernels.recurrence's gate blocks [from, to), parameters at `params` (assembly/kernels.ts recurrenceItems). */
  recurrenceItems(params: number, from: number, to: number, thread: number): void;
  /** out = gelu_tanh(gate) · up over n floats (out may be gate). */
  gegluTanh(out: number, gate: number, up: number, n: number): void;
  /** x = cap · tanh(x / cap) over n floats. */
  softcapInPlace(x: number, n: number, cap: number): void;
  /** Tokens [from, to) of x quantized into out for Q4_0 (kind 0), Q8_0 (1) or K-quant (2) weights. */
  quantizeActivationTokens(x: number, out: number, cols: number, from: number, to: number, kind: number): void;
  /** RMSNorm of rows [from, to) (eps as an f64 at epsAt), as rmsnormRows. */
  rmsnormRowsAt(out: number, x: number, gain: number, from: number, to: number, dim: number, epsAt: number): void;
}

/** Elements [start, end) of thread `index`, in multiples of 4 so each element takes the same SIMD path as on one thread. */
export function elementSlice(n: number, threads: number, index: number): [number, number] {
  const quads = Math.ceil(n / 4);
  return [Math.min(n, Math.floor((quads * index) / threads) * 4), Math.min(n, Math.floor((quads * (index + 1)) / threads) * 4)];
}

/** An f32 parameter (the soft-cap) through a 32-bit control word. */
const f32Bits = new Float32Array(1);
const u32Bits = new Uint32Array(f32Bits.buffer);
export function floatToWord(value: number): number {
  f32Bits[0] = value;
  return u32Bits[0]!;
}
function wordToFloat(word: number): number {
  u32Bits[0] = word;
  return f32Bits[0]!;
}

/** Items [start, end) of thread `index` of `threads`, evenly (attention's (query, KV head) pairs, the recurrence's gate blocks). */
export function itemSlice(items: number, threads: number, index: number): [number, number] {
  return [Math.floor((items * index) / threads), Math.floor((items * (index + 1)) / threads)];
}

/**
 * Runs this thread's slice of the job in the control block: a matmul's rows, or for attention its
 * work items (ROWS of them, parameters at X).
 */
export function runSlice(kernels: SliceKernels, control: Uint32Array, index: number): void {
  const kernel = KERNELS[control[KERNEL]!]!;
  const rows = control[ROWS]!;
  if (kernel === "attendItems" || kernel === "recurrenceItems") {
    const [from, to] = itemSlice(rows, control[THREADS]!, index);
    if (to > from) kernels[kernel](control[X]!, from, to, index);
    return;
  }
  if (kernel === "quantizeActivationTokens" || kernel === "rmsnormRowsAt") {
    // ROWS rows of COLS: quantization's kind in W; RMSNorm's gain in W, its eps's address in SEQ_LEN.
    const [from, to] = itemSlice(rows, control[THREADS]!, index);
    if (to <= from) return;
    if (kernel === "quantizeActivationTokens")
      kernels.quantizeActivationTokens(control[X]!, control[OUT]!, control[COLS]!, from, to, control[W]!);
    else kernels.rmsnormRowsAt(control[OUT]!, control[X]!, control[W]!, from, to, control[COLS]!, control[SEQ_LEN]!);
    return;
  }
  if (kernel === "gegluTanh" || kernel === "softcapInPlace") {
    const [from, to] = elementSlice(rows, control[THREADS]!, index);
    if (to <= from) return;
    const at = 4 * from;
    if (kernel === "gegluTanh") kernels.gegluTanh(control[OUT]! + at, control[X]! + at, control[W]! + at, to - from);
    else kernels.softcapInPlace(control[OUT]! + at, to - from, wordToFloat(control[COLS]!));
    return;
  }
  const cols = control[COLS]!;
  const [start, end] = rowSlice(rows, control[THREADS]!, index);
  if (end <= start) return;
  kernels[kernel](
    control[OUT]! + start * 4,
    control[X]!,
    control[W]! + start * rowBytes(kernel, cols),
    end - start,
    cols,
    control[SEQ_LEN]!,
    rows,
    control[SCRATCH]! + index * control[SCRATCH_STRIDE]!,
  );
}
