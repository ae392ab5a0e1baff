/**
 * One running sequence: a KV cache plus the token ids it holds. Feeding a new prompt reuses the
 * longest shared prefix (chat turns, edits, prefix reuse) and recomputes only the rest.
 */
import type { CausalLM, DecodeState, StateOptions } from "../model/causal-lm.js";

export class Sequence {
  /** The model's decode state (a KV cache for Gemma). */
  readonly cache: DecodeState;
  /** Token ids whose keys and values are in the cache, in order. */
  private cachedIds: number[] = [];
  /** How many tokens the last prefill took from the cache instead of recomputing. */
  reusedTokens = 0;

  constructor(
    private readonly model: CausalLM,
    options: StateOptions = {},
  ) {
    this.cache = model.createState(options);
  }

  get ids(): readonly number[] {
    return this.cachedIds;
  }

  /**
   * Makes the cache hold exactly `ids` and returns the logits for the token after them. Reuses the
   * shared prefix when the cache can rewind to it, else starts over.
   */
  prefill(ids: readonly number[]): Float32Array {
    const logits = this.feed(this.rewindFor(ids));
    this.markPromptEnd();
    return logits;
  }

  /**
   * The first half of a prefill: rewinds the cache to the longest prefix it shares with `ids` and
   * returns the tokens still to run (at least one: the last must run to produce logits).
   */
  rewindFor(ids: readonly number[]): readonly number[] {
    let shared = 0;
    while (shared < ids.length && shared < this.cachedIds.length && ids[shared] === this.cachedIds[shared]) shared++;
    if (shared === ids.length) shared--;
    shared = this.cache.rewindPointAtMost(shared);
    this.cache.rewindTo(shared);
    this.cachedIds = this.cachedIds.slice(0, shared);
    this.reusedTokens = shared;
    return ids.slice(shared);
  }

  /** The end of a prompt is where the next turn of a conversation will resume. */
  markPromptEnd(): void {
    this.cache.mark();
  }

  /** prefill for any model: through forwardAsync where the model has one (WebGPU). */
  async prefillAsync(ids: readonly number[]): Promise<Float32Array> {
    const logits = await this.feedAsync(this.rewindFor(ids));
    this.markPromptEnd();
    return logits;
  }

  /** feed for any model: through forwardAsync where the model has one (WebGPU). */
  async feedAsync(ids: readonly number[]): Promise<Float32Array> {
    if (!this.model.forwardAsync) return this.feed(ids);
    const logits = await this.model.forwardAsync(ids, this.cache, "last");
    this.cachedIds.push(...ids);
    return logits;
  }

  /** Appends tokens and returns the logits after the last. */
  feed(ids: readonly number[]): Float32Array {
    const logits = this.model.forward(ids, this.cache, "last");
    this.cachedIds.push(...ids);
    return logits;
  }

  /** Runs several sequences' new tokens in one batched pass where the model has one; each one's last logits. */
  static feedMany(model: CausalLM, items: readonly { sequence: Sequence; ids: readonly number[] }[]): Float32Array[] {
    if (items.length === 1 || !model.forwardBatch) return items.map(({ sequence, ids }) => sequence.feed(ids));
    const logits = model.forwardBatch(items.map(({ sequence, ids }) => ({ ids, state: sequence.cache })));
    for (const { sequence, ids } of items) sequence.cachedIds.push(...ids);
    return logits;
  }
}
