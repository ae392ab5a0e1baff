/**
 * Holds generated tokens back while their text could still be the start of a stop string, so a
 * streaming consumer never sees any part of a stop string. Token texts are passed through unchanged,
 * except the token in which a stop string begins, which is cut at that point.
 */
export interface GeneratedToken {
  id: number;
  /** The text this token adds to the output ("" while a multi-byte character is incomplete). */
  text: string;
  /** Natural-log probability of this token under the model's raw distribution (with `logprobs`). */
  logprob?: number;
  /** The most likely tokens at this step, best first (with `logprobs` > 0). */
  topLogprobs?: TokenLogprob[];
}

export interface TokenLogprob {
  id: number;
  logprob: number;
}

export class StopStringFilter {
  private queue: GeneratedToken[] = [];

  constructor(private readonly stops: readonly string[]) {}

  /** Adds a token; returns the tokens now safe to emit and whether a stop string was completed. */
  push(token: GeneratedToken): { ready: GeneratedToken[]; stopped: boolean } {
    this.queue.push(token);
    if (this.stops.length === 0) return { ready: this.take(this.queue.length), stopped: false };
    const held = this.queue.map((t) => t.text).join("");
    let stopAt = -1;
    for (const stop of this.stops) {
      const at = held.indexOf(stop);
      if (at >= 0 && (stopAt < 0 || at < stopAt)) stopAt = at;
    }
    if (stopAt >= 0) return { ready: this.cutAt(stopAt), stopped: true };
    const safeLength = held.length - this.longestStopPrefixSuffix(held);
    let covered = 0;
    let count = 0;
    while (count < this.queue.length && covered + this.queue[count]!.text.length <= safeLength) {
      covered += this.queue[count]!.text.length;
      count++;
    }
    return { ready: this.take(count), stopped: false };
  }

  /** Releases whatever is held when generation ends without a stop string. */
  flush(): GeneratedToken[] {
    return this.take(this.queue.length);
  }

  private take(count: number): GeneratedToken[] {
    return this.queue.splice(0, count);
  }

  /** Tokens before the stop string, the one containing its start cut short; the rest is dropped. */
  private cutAt(offset: number): GeneratedToken[] {
    const out: GeneratedToken[] = [];
    let covered = 0;
    for (const t of this.queue) {
      if (covered >= offset) break;
      out.push(covered + t.text.length <= offset ? t : { ...t, text: t.text.slice(0, offset - covered) });
      covered += t.text.length;
    }
    this.queue = [];
    return out;
  }

  /** Length of the longest suffix of `text` that is a proper prefix of some stop string. */
  private longestStopPrefixSuffix(text: string): number {
    let best = 0;
    for (const stop of this.stops) {
      for (let n = Math.min(stop.length - 1, text.length); n > best; n--) {
        if (text.endsWith(stop.slice(0, n))) {
          best = n;
          break;
        }
      }
    }
    return best;
  }
}
