/**
 * A list of strings held as UTF-16 code units end to end, as a GGUF file's string arrays are read.
 * A 256k-piece vocabulary as 256k JS strings made V8 grow its young generation while they were
 * parsed and kept it committed (about 30 MB of RSS); here it is two typed arrays (about 4 MB).
 */
export class StringTable {
  /** `ends[i]`: where string i's code units end in `units` (string 0 starts at 0). */
  constructor(
    readonly units: Uint16Array,
    readonly ends: Uint32Array,
  ) {}

  static from(strings: readonly string[]): StringTable {
    const ends = new Uint32Array(strings.length);
    let total = 0;
    strings.forEach((s, i) => {
      total += s.length;
      ends[i] = total;
    });
    const units = new Uint16Array(total);
    strings.forEach((s, i) => {
      for (let j = 0, at = i === 0 ? 0 : ends[i - 1]!; j < s.length; j++) units[at + j] = s.charCodeAt(j);
    });
    return new StringTable(units, ends);
  }

  get length(): number {
    return this.ends.length;
  }

  start(i: number): number {
    return i === 0 ? 0 : this.ends[i - 1]!;
  }

  /** String `i`; undefined outside the list. */
  at(i: number): string | undefined {
    if (!Number.isInteger(i) || i < 0 || i >= this.ends.length) return undefined;
    const from = this.start(i);
    const to = this.ends[i]!;
    let text = "";
    // Chunks keep fromCharCode's argument count well under engines' limits.
    for (let at = from; at < to; at += 4096) text += String.fromCharCode(...this.units.subarray(at, Math.min(to, at + 4096)));
    return text;
  }

  toArray(): string[] {
    return Array.from({ length: this.length }, (_, i) => this.at(i)!);
  }
}
