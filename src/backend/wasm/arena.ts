/**
 * One WebAssembly memory holding weight matrices plus a scratch area for activations. A 32-bit
 * memory holds at most 4 GiB, so a large model is spread over several arenas, each owning whole
 * matrices; only activations are copied in and out per call. Memory grows as matrices arrive, so
 * each JS copy can be dropped right after it is placed (no second copy of the model in RAM).
 * Block matrices (Q8_0, Q4_0, K-quants) are rearranged in place into the kernels' groups of four
 * rows (packedBytes), and so are float matrices whose rows split into chunks of four (floatPacked).
 */
import type { Weight } from "../kernels.js";
import { BLOCK_LAYOUTS, blockRowBytes, isBlockDtype, isKQuant } from "../../weights/block-layout.js";
import { instantiate, type KernelExports } from "./module.js";

const PAGE = 65536;
/** Weights per arena, leaving room for scratch below the 4 GiB wasm32 limit. */
export const ARENA_WEIGHT_LIMIT = 3.5 * 1024 ** 3;
/** Bytes kept free at address 0 (the module's own data lives there). */
const LOW_RESERVED = PAGE;
/** Grow in large steps: each growth re-points every weight view. */
const GROW_STEP = 256 * 1024 * 1024;

const align = (n: number) => Math.ceil(n / 16) * 16;

const isBlocks = (w: Weight) => isBlockDtype(w.dtype);

/**
 * Whether a float matrix lives in groups of four rows (assembly/float-rows.ts): one stream per
 * thread instead of four; its bytes are unchanged. Rows that do not split into chunks of four
 * columns stay row-major.
 */
export const floatPacked = (w: { dtype: Weight["dtype"]; cols: number }): boolean => !isBlockDtype(w.dtype) && w.cols % 4 === 0;

/**
 * Bytes of a matrix in the arena, from its dtype and shape: float matrices as stored; block
 * matrices in groups of four rows (assembly/kernels.ts packRows4, k-quants.ts packKRows4), a last
 * partial group padded.
 */
export function packedBytes(w: Weight): number {
  if (!isBlockDtype(w.dtype)) return w.rows * w.cols * (w.dtype === "f32" ? 4 : 2);
  return Math.ceil(w.rows / 4) * 4 * blockRowBytes(BLOCK_LAYOUTS[w.dtype], w.cols);
}

/** Bytes per element of the matrix's data view (block matrices: bytes). */
const elementBytes = (w: Weight): number => (w.dtype === "f32" ? 4 : isBlocks(w) ? 1 : 2);

export class WasmArena {
  readonly memory: WebAssembly.Memory;
  readonly kernels: KernelExports;
  private readonly placed: { weight: Weight; ptr: number; length: number }[] = [];
  private top = LOW_RESERVED;

  /** `shared`: a memory worker threads can use too (needs the threaded module). */
  constructor(
    module: WebAssembly.Module,
    shared = false,
    private readonly growStep = GROW_STEP,
  ) {
    this.memory = new WebAssembly.Memory({ initial: 2, maximum: 65536, shared });
    this.kernels = instantiate(module, this.memory);
  }

  /** [start, end) of the memory the weights occupy (and arrays placed for good). */
  weightRange(): [number, number] {
    return [LOW_RESERVED, this.top];
  }

  fits(bytes: number): boolean {
    return this.top + bytes <= ARENA_WEIGHT_LIMIT || this.placed.length === 0;
  }

  /**
   * Copies a matrix in and makes `weight.data` a view of it, so the JS copy can be freed. A block
   * matrix's view is then in the kernels' packed layout, which only these kernels read.
   */
  place(weight: Weight): number {
    const bytes = weight.data.byteLength;
    const source = new Uint8Array(weight.data.buffer, weight.data.byteOffset, bytes);
    return this.placeFilled(weight, 0, (ptr) => new Uint8Array(this.memory.buffer, ptr, bytes).set(source));
  }

  /**
   * Places `weight` (its dtype and shape; its data is replaced) by letting `fill` write its
   * row-major contents at `ptr`, with `scratchBytes` free at `scratch` above it; block matrices are
   * then packed in place, four rows at a time through scratch.
   */
  placeFilled(weight: Weight, scratchBytes: number, fill: (ptr: number, scratch: number) => void): number {
    const { ptr, scratch } = this.reserve(weight, scratchBytes);
    fill(ptr, scratch);
    return this.finish(weight, ptr);
  }

  /** placeFilled with a fill that reads asynchronously (nothing else may place meanwhile). */
  async placeFilledAsync(weight: Weight, scratchBytes: number, fill: (ptr: number, scratch: number) => Promise<void>): Promise<number> {
    const { ptr, scratch } = this.reserve(weight, scratchBytes);
    await fill(ptr, scratch);
    return this.finish(weight, ptr);
  }

  /** Room for `weight` at the top, and scratch above it (packing needs one group of four rows). */
  private reserve(weight: Weight, scratchBytes: number): { ptr: number; scratch: number } {
    const ptr = this.top;
    const packed = packedBytes(weight);
    const scratch = align(ptr + packed);
    const packScratch = isBlocks(weight)
      ? packed / Math.ceil(weight.rows / 4)
      : floatPacked(weight)
        ? 4 * weight.cols * elementBytes(weight)
        : 0;
    this.ensure(scratch + Math.max(scratchBytes, packScratch), this.growStep);
    return { ptr, scratch };
  }

  /** Packs a block matrix in place, makes `weight.data` its view and moves the top past it. */
  private finish(weight: Weight, ptr: number): number {
    const packed = packedBytes(weight);
    const scratch = align(ptr + packed);
    const { dtype } = weight;
    if (isKQuant(dtype)) this.kernels.packKRows4(ptr, weight.rows, weight.cols, BLOCK_LAYOUTS[dtype].blockBytes, scratch);
    else if (isBlocks(weight)) this.kernels.packRows4(ptr, weight.rows, weight.cols, dtype === "q8_0" ? 1 : 0, scratch);
    else if (floatPacked(weight)) this.kernels.packFloatRows4(ptr, weight.rows, weight.cols, elementBytes(weight), scratch);
    this.top = scratch;
    const placed = { weight, ptr, length: packed / elementBytes(weight) };
    this.placed.push(placed);
    this.view(placed);
    return ptr;
  }

  /** Copies a plain array in for good (the caller keeps its own copy); returns its address. */
  placeArray(values: Float32Array): number {
    const ptr = this.top;
    this.ensure(ptr + values.byteLength, this.growStep);
    new Float32Array(this.memory.buffer, ptr, values.length).set(values);
    this.top = align(ptr + values.byteLength);
    return ptr;
  }

  /** Start of a scratch area of at least `bytes`, above every weight. */
  scratch(bytes: number): number {
    this.ensure(this.top + bytes, 0);
    return this.top;
  }

  private ensure(end: number, step: number): void {
    const size = this.memory.buffer.byteLength;
    if (end <= size) return;
    const wanted = Math.min(65536 * PAGE, Math.max(end, size + step));
    this.memory.grow(Math.ceil((wanted - size) / PAGE));
    // Growing detaches the old buffer (old views read as empty): re-point every weight.
    for (const placed of this.placed) this.view(placed);
  }

  private view({ weight, ptr, length }: { weight: Weight; ptr: number; length: number }): void {
    const buffer = this.memory.buffer;
    // A shared memory's buffer is a SharedArrayBuffer; views over it read the same.
    const bytes = buffer as ArrayBuffer;
    weight.data =
      weight.dtype === "f32"
        ? new Float32Array(bytes, ptr, length)
        : isBlocks(weight)
          ? new Uint8Array(bytes, ptr, length)
          : new Uint16Array(bytes, ptr, length);
  }
}
