/**
 * One running sequence: a KV cache plus the token ids it holds. Feeding a new prompt reuses the
 * longest shared prefix (chat turns, edits, prefix reuse) and recomputes only the rest.
 */
import { KvCache, type KvCacheOptions } from "../model/kv-cache.js";
import type { GemmaForward } from "../model/forward.js";

export class Sequence {
  readonly cache: KvCache;
  /** Token ids whose keys and values are in the cache, in order. */
  private cachedIds: number[] = [];
  /** How many tokens the last prefill took from the cache instead of recomputing. */
  reusedTokens = 0;

  constructor(
    private readonly model: GemmaForward,
    options: KvCacheOptions = {},
  ) {
    this.cache = new KvCache(model.config, options);
  }

  get ids(): readonly number[] {
    return this.cachedIds;
  }

  /**
   * Makes the cache hold exactly `ids` and returns the logits for the token after them. Reuses the
   * shared prefix when the cache can rewind to it, else starts over.
   */
  prefill(ids: readonly number[]): Float32Array {
    let shared = 0;
    while (shared < ids.length && shared < this.cachedIds.length && ids[shared] === this.cachedIds[shared]) shared++;
    // At least one token must run to produce logits.
    if (shared === ids.length) shared--;
    if (this.cache.canRewindTo(shared)) this.cache.rewindTo(shared);
    else {
      this.cache.clear();
      shared = 0;
    }
    this.cachedIds = this.cachedIds.slice(0, shared);
    this.reusedTokens = shared;
    return this.feed(ids.slice(shared));
  }

  /** Appends tokens and returns the logits after the last. */
  feed(ids: readonly number[]): Float32Array {
    const logits = this.model.forward(ids, this.cache, "last");
    this.cachedIds.push(...ids);
    return logits;
  }
}
