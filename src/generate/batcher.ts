/**
 * Batched decoding: generations that share a model hand their next tokens to one batcher, and
 * everything handed in before the event loop turns runs as one forward pass (Sequence.feedMany:
 * one GEMM per weight matrix for all sequences instead of one matrix-vector product each).
 * Prompts run in chunks of `prefillChunk` tokens, one chunk per pass, so a long prompt shares the
 * passes with the others' decoding instead of stalling it. An asynchronous forward pass (WebGPU)
 * has no batched pass yet: its items run one after another, never two at once.
 */
import type { CausalLM } from "../model/causal-lm.js";
import { yieldToEventLoop } from "./event-loop.js";
import { Sequence } from "./sequence.js";

interface Pending {
  sequence: Sequence;
  ids: readonly number[];
  resolve: (logits: Float32Array) => void;
  reject: (error: unknown) => void;
}

export class DecodeBatcher {
  private pending: Pending[] = [];
  private scheduled = false;
  /** Forward passes run and the tokens they held, for tests and metrics. */
  passes = 0;
  tokens = 0;

  constructor(
    private readonly model: CausalLM,
    readonly prefillChunk = 64,
  ) {}

  /** Appends tokens to a sequence in the next batched pass; the logits after the last. */
  feed(sequence: Sequence, ids: readonly number[]): Promise<Float32Array> {
    return new Promise((resolve, reject) => {
      this.pending.push({ sequence, ids, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        void yieldToEventLoop().then(() => this.flush());
      }
    });
  }

  /** Sequence.prefill in chunks that join the batched passes. */
  async prefill(sequence: Sequence, ids: readonly number[]): Promise<Float32Array> {
    const rest = sequence.rewindFor(ids);
    let logits: Float32Array | null = null;
    for (let at = 0; at < rest.length; at += this.prefillChunk) logits = await this.feed(sequence, rest.slice(at, at + this.prefillChunk));
    sequence.markPromptEnd();
    return logits!;
  }

  /** The asynchronous forward's queue: each batch starts when the one before has finished. */
  private running: Promise<void> = Promise.resolve();

  private flush(): void {
    const batch = this.pending;
    this.pending = [];
    this.scheduled = false;
    if (this.model.forwardAsync) {
      this.running = this.running.then(() => this.runOneByOne(batch));
      return;
    }
    try {
      const logits = Sequence.feedMany(this.model, batch);
      this.passes++;
      this.tokens += batch.reduce((n, p) => n + p.ids.length, 0);
      for (const [i, p] of batch.entries()) p.resolve(logits[i]!);
    } catch (e) {
      for (const p of batch) p.reject(e);
    }
  }

  private async runOneByOne(batch: Pending[]): Promise<void> {
    for (const p of batch) {
      try {
        p.resolve(await p.sequence.feedAsync(p.ids));
        this.passes++;
        this.tokens += p.ids.length;
      } catch (e) {
        p.reject(e);
      }
    }
  }
}
