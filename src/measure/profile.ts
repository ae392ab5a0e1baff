/**
 * A per-kernel profile: wraps a Kernels object so every call is timed, to show where decode and
 * prompt time goes (`gemma-ts bench --profile`). Matmuls are split by weight dtype and by whether
 * they are the output head (the tied embedding, vocab rows).
 */
import type { Kernels, Weight } from "../backend/kernels.js";

export interface KernelTiming {
  kernel: string;
  calls: number;
  seconds: number;
}

export class KernelProfile {
  private readonly timings = new Map<string, KernelTiming>();

  /** The same kernels, timed. */
  wrap(kernels: Kernels, vocabSize: number): Kernels {
    const wrapped = { ...kernels } as Record<string, unknown>;
    for (const [name, fn] of Object.entries(kernels)) {
      if (typeof fn !== "function" || name === "adopt" || name === "ready" || name === "weightReadGBps") continue;
      wrapped[name] = (...args: unknown[]) => {
        const label = name === "matmul" ? matmulLabel(args[2] as Weight, vocabSize) : name;
        const t = performance.now();
        const result = (fn as (...a: unknown[]) => unknown).apply(kernels, args);
        this.add(label, (performance.now() - t) / 1000);
        return result;
      };
    }
    return wrapped as unknown as Kernels;
  }

  reset(): void {
    this.timings.clear();
  }

  /** Kernels by total time, largest first (copies: later calls do not change a report already taken). */
  report(): KernelTiming[] {
    return [...this.timings.values()].map((t) => ({ ...t })).sort((a, b) => b.seconds - a.seconds);
  }

  private add(kernel: string, seconds: number): void {
    const t = this.timings.get(kernel) ?? { kernel, calls: 0, seconds: 0 };
    t.calls++;
    t.seconds += seconds;
    this.timings.set(kernel, t);
  }
}

function matmulLabel(w: Weight, vocabSize: number): string {
  return `matmul ${w.dtype}${w.rows === vocabSize ? " (output head)" : ""}`;
}
