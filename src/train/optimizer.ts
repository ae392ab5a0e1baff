/**
 * AdamW (decoupled weight decay, Loshchilov & Hutter) with gradient clipping by global norm and a
 * linear-warmup + cosine learning-rate schedule. Weight decay applies to matrices only, not to
 * norm weights (the usual practice; decaying RMSNorm offsets would pull gains towards 1).
 */
import type { Vec } from "./ops.js";

export interface AdamWSettings {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** Clip the global gradient norm to this (0: no clipping). */
  clipNorm: number;
}

export const DEFAULT_ADAMW: AdamWSettings = { lr: 1e-3, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, clipNorm: 1 };

/** Learning rate at `step` (0-based): linear warmup to `peak`, then cosine down to `peak · minRatio`. */
export function scheduledLr(step: number, peak: number, warmup: number, total: number, minRatio = 0.1): number {
  if (warmup > 0 && step < warmup) return (peak * (step + 1)) / warmup;
  const progress = total <= warmup ? 1 : Math.min(1, (step - warmup) / Math.max(1, total - warmup));
  return peak * (minRatio + (1 - minRatio) * 0.5 * (1 + Math.cos(Math.PI * progress)));
}

export function globalNorm(grads: Iterable<Vec>): number {
  let sum = 0;
  for (const g of grads) for (let i = 0; i < g.length; i++) sum += g[i]! * g[i]!;
  return Math.sqrt(sum);
}

export class AdamW {
  readonly m = new Map<string, Float32Array>();
  readonly v = new Map<string, Float32Array>();
  /** Steps taken (bias correction uses it; saved with checkpoints to resume exactly). */
  step = 0;

  constructor(
    readonly settings: AdamWSettings,
    shapes: ReadonlyMap<string, number[]>,
  ) {
    for (const [name, shape] of shapes) {
      const size = shape.reduce((a, b) => a * b, 1);
      this.m.set(name, new Float32Array(size));
      this.v.set(name, new Float32Array(size));
    }
  }

  /** One update at learning rate `lr`; returns the gradient norm before clipping. */
  update(params: ReadonlyMap<string, Vec>, grads: ReadonlyMap<string, Vec>, lr: number, decayed: (name: string) => boolean): number {
    const { beta1, beta2, eps, weightDecay, clipNorm } = this.settings;
    const norm = globalNorm(grads.values());
    const clip = clipNorm > 0 && norm > clipNorm ? clipNorm / norm : 1;
    this.step++;
    const c1 = 1 - beta1 ** this.step;
    const c2 = 1 - beta2 ** this.step;
    for (const [name, p] of params) {
      const g = grads.get(name)!;
      const m = this.m.get(name)!;
      const v = this.v.get(name)!;
      const decay = decayed(name) ? lr * weightDecay : 0;
      for (let i = 0; i < p.length; i++) {
        const gi = g[i]! * clip;
        m[i] = beta1 * m[i]! + (1 - beta1) * gi;
        v[i] = beta2 * v[i]! + (1 - beta2) * gi * gi;
        p[i] = p[i]! - decay * p[i]! - (lr * (m[i]! / c1)) / (Math.sqrt(v[i]! / c2) + eps);
      }
    }
    return norm;
  }
}
