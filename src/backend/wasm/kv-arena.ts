/**
 * A shared WebAssembly memory that KV caches keep their rows in (Kernels.kvStorage), so attention
 * reads a cache's ring where it lies instead of copying every visible row in per call (16 MB a
 * layer at position 2048 on a 2B). Rows are lent as Float32Array views: the memory is shared, so
 * growing it never detaches them. Blocks are reused first-fit and merged when given back;
 * attention's per-call scratch lies above the highest block. A block whose view is
 * garbage-collected without being given back is freed then.
 */
import type { KvStorage } from "../kernels.js";
import { instantiate, type KernelExports } from "./module.js";

const PAGE = 65536;
/** Bytes kept free at address 0 (the module's own data lives there). */
const LOW_RESERVED = PAGE;
/** Blocks stop here; the rest of the 4 GiB is attention's scratch. */
export const KV_BLOCK_LIMIT = 3.5 * 1024 ** 3;
/** Grow in steps of at least this much. */
const GROW_STEP = 64 * 1024 * 1024;

interface Block {
  ptr: number;
  bytes: number;
}

const align = (n: number) => Math.ceil(n / 64) * 64;

export class KvArena implements KvStorage {
  readonly memory: WebAssembly.Memory;
  readonly kernels: KernelExports;
  private top = LOW_RESERVED;
  /**
   * Memory from here up was never written (fresh pages are zero): blocks there need no zeroing, so
   * their pages stay uncommitted until used.
   */
  private pristine = LOW_RESERVED;
  /** Free blocks below top, by address, never adjacent (merged). */
  private readonly free: Block[] = [];
  private readonly lent = new WeakMap<Float32Array, Block>();
  private readonly collected = new FinalizationRegistry<Block>((block) => this.giveBack(block));

  /** `module`: the shared-memory (threaded) build of the kernels. */
  constructor(
    module: WebAssembly.Module,
    private readonly limit = KV_BLOCK_LIMIT,
  ) {
    this.memory = new WebAssembly.Memory({ initial: 2, maximum: 65536, shared: true });
    this.kernels = instantiate(module, this.memory);
  }

  allocate(floats: number): Float32Array | null {
    const bytes = align(Math.max(1, floats) * 4);
    const ptr = this.take(bytes);
    if (ptr === null) return null;
    const block = { ptr, bytes };
    const view = new Float32Array(this.memory.buffer as ArrayBuffer, ptr, floats);
    view.fill(0, 0, Math.max(0, Math.min(floats, (this.pristine - ptr) / 4)));
    this.pristine = Math.max(this.pristine, ptr + bytes);
    this.lent.set(view, block);
    this.collected.register(view, block, view);
    return view;
  }

  release(array: Float32Array): void {
    const block = this.lent.get(array);
    if (!block) return;
    this.lent.delete(array);
    this.collected.unregister(array);
    this.giveBack(block);
  }

  /** The address of an array this arena lent, or undefined. */
  pointerOf(array: Float32Array): number | undefined {
    return this.lent.get(array)?.ptr;
  }

  /** Bytes lent now or held free below the top (what the memory must keep). */
  get heldBytes(): number {
    return this.top - LOW_RESERVED;
  }

  /** Start of a scratch area of at least `bytes` above every block, valid until the next allocate. */
  scratch(bytes: number): number {
    this.ensure(this.top + bytes);
    this.pristine = Math.max(this.pristine, this.top + bytes);
    return this.top;
  }

  private take(bytes: number): number | null {
    const i = this.free.findIndex((b) => b.bytes >= bytes);
    if (i >= 0) {
      const block = this.free[i]!;
      const ptr = block.ptr;
      if (block.bytes === bytes) this.free.splice(i, 1);
      else this.free[i] = { ptr: ptr + bytes, bytes: block.bytes - bytes };
      return ptr;
    }
    if (this.top + bytes > this.limit) return null;
    const ptr = this.top;
    this.ensure(ptr + bytes);
    this.top = ptr + bytes;
    return ptr;
  }

  /** Frees a block: merged with free neighbours, and the top lowered when it was the highest. */
  private giveBack({ ptr, bytes }: Block): void {
    let at = this.free.findIndex((b) => b.ptr > ptr);
    if (at < 0) at = this.free.length;
    let block = { ptr, bytes };
    const before = this.free[at - 1];
    if (before && before.ptr + before.bytes === block.ptr) {
      block = { ptr: before.ptr, bytes: before.bytes + block.bytes };
      this.free.splice(--at, 1);
    }
    const after = this.free[at];
    if (after && block.ptr + block.bytes === after.ptr) {
      block = { ptr: block.ptr, bytes: block.bytes + after.bytes };
      this.free.splice(at, 1);
    }
    if (block.ptr + block.bytes === this.top) this.top = block.ptr;
    else this.free.splice(at, 0, block);
  }

  private ensure(end: number): void {
    const size = this.memory.buffer.byteLength;
    if (end <= size) return;
    const wanted = Math.min(65536 * PAGE, Math.max(end, size + GROW_STEP));
    this.memory.grow(Math.ceil((wanted - size) / PAGE));
  }
}
