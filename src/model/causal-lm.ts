/**
 * What the generation loop needs from a model, whatever its architecture: a forward pass over new
 * tokens that updates a decode state (a KV cache for Gemma, conv/RNN state + a ring buffer for
 * RecurrentGemma).
 */
import type { GemmaConfig } from "./gemma/config.js";
import type { RecurrentGemmaConfig } from "./recurrent-gemma/config.js";

export type ModelConfig = GemmaConfig | RecurrentGemmaConfig;

export interface DecodeState {
  /** Positions processed so far (the next token's position). */
  length: number;
  canRewindTo(position: number): boolean;
  /** The largest position <= `position` this state can rewind to (0 always works). */
  rewindPointAtMost(position: number): number;
  /** Remembers the current position as a rewind point, for states that cannot rewind freely. */
  mark(): void;
  /** Forgets positions >= `position`; throws a GenerationError when that is impossible. */
  rewindTo(position: number): void;
  clear(): void;
  /**
   * Gives the rows held back to the kernels' memory now rather than when the state is
   * garbage-collected; the state is empty afterwards and grows again if used.
   */
  release(): void;
  /** Bytes held now. */
  bytes(): number;
}

export interface StateOptions {
  /** Extra ring-buffer rows on sliding-window layers, so recent positions can be rewound. */
  rewindSlack?: number;
}

export interface CausalLM {
  readonly config: ModelConfig;
  /** Logits after the final soft-cap: [ids.length, vocab] for "all", [vocab] for "last". Advances `state`. */
  forward(ids: readonly number[], state: DecodeState | null, logitsFor: "all" | "last"): Float32Array;
  /**
   * The same as forward, for models whose forward pass returns through a promise (WebGPU: its
   * `forward` throws). Callers that can wait use it where it exists.
   */
  forwardAsync?(ids: readonly number[], state: DecodeState | null, logitsFor: "all" | "last"): Promise<Float32Array>;
  /** Several sequences in one pass (batched decoding); each item's logits after its last token. Optional. */
  forwardBatch?(items: readonly { ids: readonly number[]; state: DecodeState }[]): Float32Array[];
  createState(options?: StateOptions): DecodeState;
}
