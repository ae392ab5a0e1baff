/**
 * Sequence slots and the FIFO queue of requests waiting for one: `parallel` sequences run at once, later requests wait
 * in FIFO order up to `maxQueue`, beyond which they get 503. Each slot keeps its KV cache between
 * requests, so a follow-up turn of a conversation reuses the shared prefix.
 */
import type { GemmaModel } from "../gemma-model.js";
import type { Sequence } from "../generate/sequence.js";
import { DecodeBatcher } from "../generate/batcher.js";
import { ApiError } from "./api-error.js";

export interface Slot {
  readonly index: number;
  readonly sequence: Sequence;
}

interface Waiter {
  promptIds: readonly number[];
  resolve: (slot: Slot) => void;
  reject: (error: Error) => void;
}

/** Local-layer ring rows kept beyond the window so a re-tokenized reply can be rewound a little. */
const REWIND_SLACK = 256;

export class SlotQueue {
  private readonly slots: Slot[];
  private readonly free: Slot[];
  private readonly waiters: Waiter[] = [];
  private closed = false;

  constructor(
    model: GemmaModel,
    readonly parallel: number,
    readonly maxQueue: number,
  ) {
    this.slots = Array.from({ length: parallel }, (_, index) => ({ index, sequence: model.createSequence({ rewindSlack: REWIND_SLACK }) }));
    this.free = [...this.slots];
    this.batcher = new DecodeBatcher(model.forwardPass);
  }

  /** The slots' forward passes run together (batched decoding). */
  readonly batcher: DecodeBatcher;

  /** Bytes all slots' KV caches hold now. */
  cacheBytes(): number {
    return this.slots.reduce((sum, slot) => sum + slot.sequence.cache.bytes(), 0);
  }

  get busy(): number {
    return this.parallel - this.free.length;
  }

  get queued(): number {
    return this.waiters.length;
  }

  /** A free slot (the one sharing the longest prefix with the prompt), or a place in the queue. */
  acquire(promptIds: readonly number[], signal: AbortSignal): Promise<Slot> {
    if (this.closed) return Promise.reject(new ApiError(503, "the server is shutting down", "server_error", null, "shutting_down"));
    if (this.free.length > 0 && this.waiters.length === 0) return Promise.resolve(this.takeBest(promptIds));
    if (this.waiters.length >= this.maxQueue) {
      return Promise.reject(
        new ApiError(
          503,
          `the server is busy (${this.busy} running, ${this.waiters.length} queued); retry shortly`,
          "server_error",
          null,
          "queue_full",
        ),
      );
    }
    return new Promise((resolve, reject) => {
      const waiter: Waiter = { promptIds, resolve, reject };
      this.waiters.push(waiter);
      signal.addEventListener(
        "abort",
        () => {
          const at = this.waiters.indexOf(waiter);
          if (at >= 0) {
            this.waiters.splice(at, 1);
            reject(new ApiError(400, "the client went away while queued", "invalid_request_error", null, "cancelled"));
          }
        },
        { once: true },
      );
    });
  }

  release(slot: Slot): void {
    const next = this.waiters.shift();
    if (next) next.resolve(slot);
    else this.free.push(slot);
  }

  /** Refuses new work and fails everything still queued. */
  close(): void {
    this.closed = true;
    for (const waiter of this.waiters.splice(0))
      waiter.reject(new ApiError(503, "the server is shutting down", "server_error", null, "shutting_down"));
  }

  private takeBest(promptIds: readonly number[]): Slot {
    let bestAt = 0;
    let bestShared = -1;
    this.free.forEach((slot, at) => {
      const ids = slot.sequence.ids;
      let shared = 0;
      while (shared < ids.length && shared < promptIds.length && ids[shared] === promptIds[shared]) shared++;
      if (shared > bestShared) [bestAt, bestShared] = [at, shared];
    });
    return this.free.splice(bestAt, 1)[0]!;
  }
}
