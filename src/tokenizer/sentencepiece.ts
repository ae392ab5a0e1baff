/**
 * SentencePiece BPE from a piece list with scores and types (what a GGUF file carries as
 * tokenizer.ggml.tokens / scores / token_type): spaces become "▁", then adjacent symbols are merged
 * pairwise, always the pair whose merged piece scores highest (leftmost on ties), until no merge
 * is left; a symbol that is not a piece falls back to its UTF-8 bytes (<0xXX> pieces).
 */
import { TokenizerError } from "../errors.js";
import type { StringTable } from "../weights/string-table.js";
import { PieceTable } from "./piece-table.js";
import type { SubwordCodec } from "./tokenizer.js";

/** Piece types as numbered in GGUF (llama.cpp's llama_token_type). */
export const PieceType = { normal: 1, unknown: 2, control: 3, userDefined: 4, unused: 5, byte: 6 } as const;

export interface SentencePieceVocab {
  pieces: StringTable;
  scores: readonly number[];
  types: readonly number[];
  /** Prepend "▁" to the text (SentencePiece's add_dummy_prefix; false for Gemma). */
  addSpacePrefix: boolean;
  /** Names the vocabulary's file in errors. */
  source: string;
}

const SPACE = "▁";

/** Min-heap entry: a candidate merge of symbol `left` with its right neighbour. */
interface Candidate {
  score: number;
  left: number;
  /** Lengths of both symbols when queued; a changed length means the candidate is stale. */
  leftLength: number;
  rightLength: number;
}

export class SentencePieceCodec implements SubwordCodec {
  readonly vocabSize: number;
  private readonly ids: PieceTable;
  /** Pieces a merge may produce: normal and user-defined ones (SentencePiece never merges into control/byte/unused pieces). */
  private readonly mergeable: Uint8Array;
  private readonly byteIds = new Int32Array(256).fill(-1);
  private readonly unknownId: number | null;
  /** Control and user-defined pieces, matched whole in text (longest first). */
  private readonly atomicPieces: string[];

  constructor(private readonly vocab: SentencePieceVocab) {
    const { pieces, scores, types, source } = vocab;
    if (pieces.length === 0) throw new TokenizerError(`${source}: the vocabulary is empty`);
    if (scores.length !== pieces.length || types.length !== pieces.length) {
      throw new TokenizerError(`${source}: ${pieces.length} pieces but ${scores.length} scores and ${types.length} types`);
    }
    this.vocabSize = pieces.length;
    this.ids = new PieceTable(pieces);
    this.mergeable = new Uint8Array(pieces.length);
    let unknown: number | null = null;
    const atomic: string[] = [];
    for (let id = 0; id < pieces.length; id++) {
      const type = types[id]!;
      if (type === PieceType.normal || type === PieceType.userDefined) this.mergeable[id] = 1;
      if (type === PieceType.unknown && unknown === null) unknown = id;
      // Only the few special pieces become strings here; the rest stay in the table.
      if (type === PieceType.byte) {
        const byte = /^<0x([0-9A-Fa-f]{2})>$/.exec(pieces.at(id)!);
        if (byte) this.byteIds[parseInt(byte[1]!, 16)] = id;
      }
      if ((type === PieceType.control || type === PieceType.userDefined) && pieces.ends[id]! > pieces.start(id))
        atomic.push(pieces.at(id)!);
    }
    this.unknownId = unknown;
    this.atomicPieces = atomic.sort((a, b) => b.length - a.length);
  }

  encodeText(text: string): number[] {
    return this.bpe(this.normalize(text, true));
  }

  encodeWithControlTokens(text: string): number[] {
    const ids: number[] = [];
    let plainStart = 0;
    let first = true;
    const flush = (end: number) => {
      if (end > plainStart) ids.push(...this.bpe(this.normalize(text.slice(plainStart, end), first)));
      first = false;
    };
    for (let i = 0; i < text.length; ) {
      const piece = this.atomicAt(text, i);
      if (piece === null) {
        i++;
        continue;
      }
      flush(i);
      ids.push(this.ids.find(piece));
      i += piece.length;
      plainStart = i;
    }
    flush(text.length);
    return ids;
  }

  decode(ids: readonly number[], skipSpecialTokens: boolean): string {
    let text = "";
    let bytes: number[] = [];
    const flushBytes = () => {
      if (bytes.length > 0) text += decodeBytes(bytes);
      bytes = [];
    };
    for (const id of ids) {
      const piece = this.ids.piece(id);
      if (piece === undefined) throw new TokenizerError(`token id ${id} is outside the vocabulary of ${this.vocabSize}`);
      const type = this.vocab.types[id];
      if (type === PieceType.byte && /^<0x[0-9A-Fa-f]{2}>$/.test(piece)) {
        bytes.push(parseInt(piece.slice(3, 5), 16));
        continue;
      }
      flushBytes();
      if (skipSpecialTokens && (type === PieceType.control || type === PieceType.unknown)) continue;
      text += piece.replaceAll(SPACE, " ");
    }
    flushBytes();
    return text;
  }

  tokenToId(token: string): number | null {
    const id = this.ids.find(token);
    return id < 0 ? null : id;
  }

  idToToken(id: number): string | null {
    return this.ids.piece(id) ?? null;
  }

  private normalize(text: string, atStart: boolean): string {
    const spaced = text.replaceAll(" ", SPACE);
    return this.vocab.addSpacePrefix && atStart && spaced.length > 0 ? SPACE + spaced : spaced;
  }

  private atomicAt(text: string, at: number): string | null {
    for (const piece of this.atomicPieces) if (text.startsWith(piece, at)) return piece;
    return null;
  }

  /** Score-ordered pairwise merging over a linked list of symbols (offsets into `text`). */
  private bpe(text: string): number[] {
    if (text.length === 0) return [];
    const chars = Array.from(text);
    const n = chars.length;
    const start = new Int32Array(n);
    const length = new Int32Array(n);
    const prev = new Int32Array(n);
    const next = new Int32Array(n);
    let at = 0;
    for (let i = 0; i < n; i++) {
      start[i] = at;
      length[i] = chars[i]!.length;
      at += length[i]!;
      prev[i] = i - 1;
      next[i] = i + 1 < n ? i + 1 : -1;
    }
    const heap = new CandidateHeap();
    const consider = (left: number) => {
      const right = next[left]!;
      if (left < 0 || right < 0) return;
      const id = this.ids.find(text, start[left]!, start[right]! + length[right]!);
      if (id < 0 || !this.mergeable[id]) return;
      heap.push({ score: this.vocab.scores[id]!, left, leftLength: length[left]!, rightLength: length[right]! });
    };
    for (let i = 0; i + 1 < n; i++) consider(i);
    for (let c = heap.pop(); c; c = heap.pop()) {
      const right = next[c.left]!;
      if (right < 0 || length[c.left] !== c.leftLength || length[right] !== c.rightLength || length[c.left] === 0) continue;
      length[c.left] = c.leftLength + c.rightLength;
      length[right] = 0;
      next[c.left] = next[right]!;
      if (next[right]! >= 0) prev[next[right]!] = c.left;
      consider(prev[c.left]!);
      consider(c.left);
    }
    const ids: number[] = [];
    for (let i = 0; i >= 0; i = next[i]!) {
      const id = this.ids.find(text, start[i]!, start[i]! + length[i]!);
      if (id >= 0) ids.push(id);
      else this.byteFallback(text.slice(start[i]!, start[i]! + length[i]!), ids);
    }
    return ids;
  }

  private byteFallback(piece: string, ids: number[]): void {
    for (const byte of new TextEncoder().encode(piece)) {
      const id = this.byteIds[byte]!;
      if (id >= 0) ids.push(id);
      else if (this.unknownId !== null) ids.push(this.unknownId);
      else
        throw new TokenizerError(
          `${this.vocab.source}: ${JSON.stringify(piece)} is not in the vocabulary, which has no byte pieces and no unknown piece`,
        );
    }
  }
}

/** UTF-8 bytes to text; an invalid sequence becomes one U+FFFD per byte (as Hugging Face's ByteFallback). */
function decodeBytes(bytes: number[]): string {
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(new Uint8Array(bytes));
  } catch {
    return "\uFFFD".repeat(bytes.length);
  }
}

/** Binary max-heap on score, then min on position (the leftmost of equal-score pairs merges first). */
class CandidateHeap {
  private readonly items: Candidate[] = [];

  push(c: Candidate): void {
    const items = this.items;
    items.push(c);
    let i = items.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(items[i]!, items[parent]!)) break;
      [items[i], items[parent]] = [items[parent]!, items[i]!];
      i = parent;
    }
  }

  pop(): Candidate | undefined {
    const items = this.items;
    const top = items[0];
    const last = items.pop();
    if (items.length > 0 && last) {
      items[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let best = i;
        if (l < items.length && before(items[l]!, items[best]!)) best = l;
        if (r < items.length && before(items[r]!, items[best]!)) best = r;
        if (best === i) break;
        [items[i], items[best]] = [items[best]!, items[i]!];
        i = best;
      }
    }
    return top;
  }
}

function before(a: Candidate, b: Candidate): boolean {
  return a.score > b.score || (a.score === b.score && a.left < b.left);
}
