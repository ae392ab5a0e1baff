/**
 * KV cache that honours the sliding window (GEMMA2.md §2, "KV cache / decoding"): global layers
 * keep every position, local layers keep a ring buffer of `slidingWindow` (+ optional slack)
 * positions, so a 2B at 8192 tokens holds 4096 positions on its local layers. Each layer's rows
 * are its own width (Gemma 4 varies head_dim and KV heads); KV-sharing layers hold none.
 */
import type { GemmaConfig } from "./gemma/config.js";
import { GenerationError } from "../errors.js";
import type { DecodeState, StateOptions } from "./causal-lm.js";
import type { KvStorage } from "../backend/kernels.js";

/**
 * `rewindSlack`: extra ring-buffer rows on local layers. With 0 a rewind can go back at most one
 * position; each extra row allows one more (chat edits and prefix reuse want a few).
 */
export type KvCacheOptions = StateOptions;

/** Keys and values of one layer: position j lives in row j % ringSize. */
export class LayerKv {
  k: Float32Array = new Float32Array(0);
  v: Float32Array = new Float32Array(0);
  /** `storage`: the kernels' memory for the rows (their attention reads them in place); absent: plain arrays. */
  constructor(
    readonly ringSize: number,
    readonly window: number | null,
    readonly rowWidth: number,
    private readonly storage?: KvStorage,
  ) {}

  /** Grows storage (before the ring wraps, row = position, so a prefix copy keeps it valid). */
  reserve(positions: number): void {
    const rows = Math.min(this.ringSize, positions);
    if (this.k.length >= rows * this.rowWidth) return;
    const grown = Math.min(this.ringSize, Math.max(rows, 2 * (this.k.length / this.rowWidth), 64));
    for (const key of ["k", "v"] as const) {
      const next = this.storage?.allocate(grown * this.rowWidth) ?? new Float32Array(grown * this.rowWidth);
      next.set(this[key]);
      if (this[key].length > 0) this.storage?.release(this[key]);
      this[key] = next;
    }
  }

  /** Back to no rows. */
  release(): void {
    for (const key of ["k", "v"] as const) {
      if (this[key].length > 0) this.storage?.release(this[key]);
      this[key] = new Float32Array(0);
    }
  }

  write(newK: Float32Array, newV: Float32Array, startPos: number, seqLen: number): void {
    this.reserve(startPos + seqLen);
    // Only the last ringSize positions can survive; skip the ones that would be overwritten.
    for (let s = Math.max(0, seqLen - this.ringSize); s < seqLen; s++) {
      const row = ((startPos + s) % this.ringSize) * this.rowWidth;
      this.k.set(newK.subarray(s * this.rowWidth, (s + 1) * this.rowWidth), row);
      this.v.set(newV.subarray(s * this.rowWidth, (s + 1) * this.rowWidth), row);
    }
  }
}

export class KvCache implements DecodeState {
  readonly layers: LayerKv[];
  /** Number of positions whose keys and values have been written. */
  length = 0;

  /** `storage`: where the rows live (Kernels.kvStorage); absent: plain arrays. */
  constructor(
    readonly config: GemmaConfig,
    options: KvCacheOptions = {},
    storage?: KvStorage,
  ) {
    const slack = options.rewindSlack ?? 0;
    if (!Number.isInteger(slack) || slack < 0) throw new GenerationError(`rewindSlack must be a non-negative integer, found ${slack}`);
    this.layers = [];
    for (const [i, kind] of config.layerTypes.entries()) {
      const shape = config.layers[i]!;
      // A KV-sharing layer (Gemma 4) holds nothing of its own: it reads its source layer's rows.
      if (shape.kvSource !== i) {
        this.layers.push(this.layers[shape.kvSource]!);
        continue;
      }
      const window = kind === "local" ? config.slidingWindow : null;
      const ringSize = window === null ? config.maxPositions : Math.min(window + slack, config.maxPositions);
      this.layers.push(new LayerKv(ringSize, window, shape.nKvHeads * shape.headDim, storage));
    }
  }

  /** Each layer's storage once (KV-sharing layers point at their source's). */
  distinctLayers(): LayerKv[] {
    return [...new Set(this.layers)];
  }

  /** Whether every key a query at position `position` needs is still held. */
  canRewindTo(position: number): boolean {
    if (!Number.isInteger(position) || position < 0 || position > this.length) return false;
    if (position === 0) return true;
    return this.layers.every((layer) => {
      const oldestHeld = Math.max(0, this.length - layer.ringSize);
      const oldestNeeded = layer.window === null ? 0 : Math.max(0, position - layer.window + 1);
      return oldestNeeded >= oldestHeld;
    });
  }

  rewindPointAtMost(position: number): number {
    return this.canRewindTo(position) ? position : 0;
  }

  /** Any held position can be rewound to already. */
  mark(): void {}

  /** Forgets positions >= `position`; fails clearly when a ring buffer already dropped what is needed. */
  rewindTo(position: number): void {
    if (!this.canRewindTo(position)) {
      throw new GenerationError(
        `cannot rewind the KV cache from ${this.length} to position ${position}: ` +
          (position > this.length || position < 0
            ? "outside the cached range"
            : "the sliding-window ring buffer has already dropped keys it needs (raise rewindSlack)"),
      );
    }
    this.length = position;
  }

  clear(): void {
    this.length = 0;
  }

  /** (A GPU cache's device buffers are freed by its destroy().) */
  release(): void {
    for (const layer of this.distinctLayers()) layer.release();
    this.length = 0;
  }

  /** Bytes held now (both K and V, all layers). */
  bytes(): number {
    return this.distinctLayers().reduce((sum, l) => sum + (l.k.byteLength + l.v.byteLength), 0);
  }
}
