/**
 * The training loop: each optimizer step runs `batch` sequences (forward + backward one at a time,
 * gradients accumulated), averages per token, clips, and applies AdamW at the scheduled learning
 * rate. Sequences are drawn deterministically from (seed, step), so a resumed run continues
 * exactly as an uninterrupted one would. Validation loss is the mean next-token loss per token.
 */
import { Rng } from "../generate/rng.js";
import type { TextDataset } from "./data.js";
import type { TrainableGemma } from "./model.js";
import { AdamW, DEFAULT_ADAMW, scheduledLr, type AdamWSettings } from "./optimizer.js";
import type { TeacherTargets } from "./teacher-targets.js";

export interface TrainSettings {
  steps: number;
  /** Sequences per optimizer step. */
  batch: number;
  seqLen: number;
  lr: number;
  warmup: number;
  seed: number;
  /** Distillation weight (with targets); 1 − alpha goes to the next-token loss. */
  alpha: number;
  /** Validate every this many steps (and at the end). */
  evalEvery: number;
  /** Validation sequences per evaluation (0: all). */
  evalSequences: number;
  optimizer?: Partial<AdamWSettings>;
}

export interface TrainLog {
  step: number;
  /** Mean loss per token that the gradient followed ((1 − alpha) × next-token + alpha × distillation). */
  trainLoss: number;
  /** Mean next-token loss per token on the batch (measured in every mode). */
  nextTokenLoss: number;
  /** Mean distillation loss per token on the batch; null without teacher targets. */
  distillationLoss: number | null;
  lr: number;
  gradNorm: number;
  validationLoss: number | null;
  tokensPerSecond: number;
  elapsedSeconds: number;
}

/** `batch` example indices for `step`, a pure function of (seed, step): what makes resuming exact. */
export function batchIndices(seed: number, step: number, batch: number, examples: number): number[] {
  const rng = new Rng((seed * 1_000_003 + step) >>> 0);
  return Array.from({ length: batch }, () => rng.uint32() % examples);
}

export class Trainer {
  readonly optimizer: AdamW;
  /** Steps completed (resumed runs start past 0). */
  step = 0;
  readonly history: TrainLog[] = [];

  constructor(
    readonly model: TrainableGemma,
    readonly data: TextDataset,
    readonly settings: TrainSettings,
    readonly targets: TeacherTargets | null = null,
  ) {
    this.optimizer = new AdamW({ ...DEFAULT_ADAMW, ...settings.optimizer, lr: settings.lr }, model.shapes);
  }

  /** Indices of the training sequences of `step`. */
  batchOf(step: number): number[] {
    return batchIndices(this.settings.seed, step, this.settings.batch, this.data.train.length);
  }

  /** Runs one optimizer step; returns its log entry (validation only when due). */
  trainStep(started = performance.now()): TrainLog {
    const { model, settings } = this;
    const T = settings.seqLen;
    const t0 = performance.now();
    model.zeroGrads();
    let loss = 0;
    let nextToken = 0;
    let distillation: number | null = this.targets ? 0 : null;
    const scale = 1 / (settings.batch * T);
    for (const index of this.batchOf(this.step)) {
      const window = this.data.train[index]!;
      const ids = Array.from(window.subarray(0, T));
      const target = {
        nextTokens: window.subarray(1, T + 1),
        alpha: settings.alpha,
        ...(this.targets ? { teacher: this.targets.sequence(index) } : {}),
      };
      const parts = model.lossAndBackward(ids, target, scale);
      loss += parts.total;
      nextToken += parts.nextToken;
      if (distillation !== null) distillation += parts.distillation!;
    }
    const lr = scheduledLr(this.step, settings.lr, settings.warmup, settings.steps);
    const gradNorm = this.optimizer.update(model.params, model.grads, lr, (name) => model.shapes.get(name)!.length === 2);
    this.step++;
    const seconds = (performance.now() - t0) / 1000;
    const due = this.step % settings.evalEvery === 0 || this.step === settings.steps;
    const entry: TrainLog = {
      step: this.step,
      trainLoss: loss * scale,
      nextTokenLoss: nextToken * scale,
      distillationLoss: distillation === null ? null : distillation * scale,
      lr,
      gradNorm,
      validationLoss: due ? this.validationLoss() : null,
      tokensPerSecond: (settings.batch * T) / seconds,
      elapsedSeconds: (performance.now() - started) / 1000,
    };
    this.history.push(entry);
    return entry;
  }

  /** Mean next-token loss per token over the validation sequences (NaN when there are none). */
  validationLoss(): number {
    const T = this.settings.seqLen;
    const all = this.data.validation;
    const count = this.settings.evalSequences > 0 ? Math.min(all.length, this.settings.evalSequences) : all.length;
    if (count === 0) return Number.NaN;
    let loss = 0;
    for (let i = 0; i < count; i++) loss += this.model.loss(Array.from(all[i]!.subarray(0, T)), all[i]!.subarray(1, T + 1));
    return loss / (count * T);
  }
}
