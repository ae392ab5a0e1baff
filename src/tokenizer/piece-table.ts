/**
 * A vocabulary's pieces with an index from text to id, over a StringTable: an open-addressing hash
 * of the pieces' UTF-16 code units, probed with a span of the text being encoded, so a lookup
 * makes no substring and the vocabulary costs no JS object per piece (a Map of 256k pieces held
 * about 25 MB of V8 heap beside the strings themselves).
 */
import type { StringTable } from "../weights/string-table.js";

export class PieceTable {
  /** Slot -> id + 1 (0: empty); a power of two at least twice the pieces. */
  private readonly slots: Int32Array;
  private readonly mask: number;

  constructor(readonly pieces: StringTable) {
    let capacity = 16;
    while (capacity < 2 * pieces.length) capacity *= 2;
    this.slots = new Int32Array(capacity);
    this.mask = capacity - 1;
    const { units } = pieces;
    for (let id = 0; id < pieces.length; id++) {
      const from = pieces.start(id);
      const to = pieces.ends[id]!;
      let slot = hashUnits(units, from, to) & this.mask;
      // A piece listed twice keeps its first id (what SentencePiece and a Map built in order give).
      for (; this.slots[slot] !== 0; slot = (slot + 1) & this.mask) if (this.sameUnits(this.slots[slot]! - 1, from, to)) break;
      if (this.slots[slot] === 0) this.slots[slot] = id + 1;
    }
  }

  get size(): number {
    return this.pieces.length;
  }

  /** The piece of `id`; undefined outside the vocabulary. */
  piece(id: number): string | undefined {
    return this.pieces.at(id);
  }

  /** The id of `text.slice(from, to)`, or -1 when it is not a piece. */
  find(text: string, from = 0, to = text.length): number {
    let hash = FNV_OFFSET;
    for (let i = from; i < to; i++) hash = Math.imul(hash ^ text.charCodeAt(i), FNV_PRIME);
    const { units } = this.pieces;
    for (let slot = hash & this.mask; this.slots[slot] !== 0; slot = (slot + 1) & this.mask) {
      const id = this.slots[slot]! - 1;
      const start = this.pieces.start(id);
      if (this.pieces.ends[id]! - start !== to - from) continue;
      let i = 0;
      while (i < to - from && units[start + i] === text.charCodeAt(from + i)) i++;
      if (i === to - from) return id;
    }
    return -1;
  }

  private sameUnits(id: number, from: number, to: number): boolean {
    const { units } = this.pieces;
    const start = this.pieces.start(id);
    if (this.pieces.ends[id]! - start !== to - from) return false;
    for (let i = 0; i < to - from; i++) if (units[start + i] !== units[from + i]) return false;
    return true;
  }
}

const FNV_OFFSET = 0x811c9dc5 | 0;
const FNV_PRIME = 0x01000193;

function hashUnits(units: Uint16Array, from: number, to: number): number {
  let hash = FNV_OFFSET;
  for (let i = from; i < to; i++) hash = Math.imul(hash ^ units[i]!, FNV_PRIME);
  return hash;
}
