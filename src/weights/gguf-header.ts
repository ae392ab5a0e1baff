/**
 * A GGUF header (v2/v3: magic, version, counts, metadata, tensor infos) parsed from its bytes in
 * one pass. Written here rather than taken from @huggingface/gguf because that parser builds an
 * object per array element and decodes a 256k-entry vocabulary through a growing buffer of
 * fetched chunks: about 100 MB of V8 heap for a Gemma header, which stayed committed next to the
 * weights and kept peak RSS 20% over them. Every count and length is checked against the file's
 * size before anything is allocated for it, so a corrupt header fails with its offset, not a hang.
 */

import { StringTable } from "./string-table.js";

/**
 * A metadata value: unsigned/signed 64-bit integers stay bigint, arrays hold one type, and an
 * array of strings is a StringTable (a vocabulary of 256k pieces is one).
 */
export type GgufMetadataValue = string | number | bigint | boolean | StringTable | GgufMetadataValue[];

export interface GgufTensorInfo {
  name: string;
  /** GGML's ne[]: innermost dimension first. */
  dims: number[];
  type: number;
  /** From the start of the data section. */
  offset: number;
}

export interface GgufHeader {
  version: number;
  metadata: Map<string, GgufMetadataValue>;
  tensors: GgufTensorInfo[];
  /** Byte offset just past the last tensor info (the data section starts at the next alignment). */
  end: number;
}

/** The header needs bytes past the ones given: read at least `bytes` and parse again. */
export class GgufHeaderTruncated extends Error {
  constructor(readonly bytes: number) {
    super(`the GGUF header needs ${bytes} bytes`);
  }
}

/** A malformed header: `message` says what and where, without the file's name. */
export class GgufHeaderError extends Error {}

/** Value types as numbered in GGUF. */
export const GGUF_TYPE = {
  UINT8: 0,
  INT8: 1,
  UINT16: 2,
  INT16: 3,
  UINT32: 4,
  INT32: 5,
  FLOAT32: 6,
  BOOL: 7,
  STRING: 8,
  ARRAY: 9,
  UINT64: 10,
  INT64: 11,
  FLOAT64: 12,
} as const;

/** GGML's limit on tensor dimensions. */
const MAX_DIMS = 4;
/** Nesting allowed for arrays of arrays (the spec allows it; models use none). */
const MAX_ARRAY_DEPTH = 4;
/** Bytes of the fixed-size value types, by GGUF type id. */
const SCALAR_BYTES: Readonly<Record<number, number>> = { 0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8 };
const { STRING, ARRAY } = GGUF_TYPE;

/**
 * Parses the header at the start of `bytes` (the first bytes of a file of `fileSize` bytes).
 * Throws GgufHeaderTruncated when the header goes on past `bytes` but fits in the file, and
 * GgufHeaderError when it cannot be a valid header.
 */
export function parseGgufHeader(bytes: Uint8Array, fileSize: number): GgufHeader {
  return new HeaderReader(bytes, fileSize).header();
}

class HeaderReader {
  private readonly view: DataView;
  // ignoreBOM: a piece like Gemma's "\uFEFF#" keeps its byte-order mark (the default drops it).
  private readonly decoder = new TextDecoder("utf-8", { ignoreBOM: true });
  private at = 0;

  constructor(
    private readonly bytes: Uint8Array,
    private readonly fileSize: number,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  header(): GgufHeader {
    this.need(24);
    const version = this.view.getUint32(4, true);
    if (version !== 2 && version !== 3) {
      const swapped = this.view.getUint32(4, false);
      if (swapped >= 1 && swapped <= 3) throw new GgufHeaderError("big-endian GGUF files are not supported");
      if (version === 1)
        throw new GgufHeaderError("GGUF version 1 (2023) is not supported; convert the model again with a current llama.cpp");
      throw new GgufHeaderError(`unknown GGUF version ${version}`);
    }
    this.at = 8;
    const tensorCount = this.count("tensor count", 8 + 4 + 8 + 4 + 8);
    const kvCount = this.count("metadata count", 8 + 4 + 1);
    const metadata = new Map<string, GgufMetadataValue>();
    for (let i = 0; i < kvCount; i++) {
      const keyAt = this.at;
      const key = this.string();
      if (metadata.has(key)) throw new GgufHeaderError(`metadata key ${JSON.stringify(key)} appears twice (at byte ${keyAt})`);
      metadata.set(key, this.value(this.u32(), 0, key));
    }
    const tensors: GgufTensorInfo[] = [];
    for (let i = 0; i < tensorCount; i++) {
      const name = this.string();
      const nDims = this.u32();
      if (nDims < 1 || nDims > MAX_DIMS) throw new GgufHeaderError(`tensor ${name} has ${nDims} dimensions; GGUF allows 1 to ${MAX_DIMS}`);
      const dims: number[] = [];
      for (let d = 0; d < nDims; d++) dims.push(this.u64(`tensor ${name}'s dimension`));
      tensors.push({ name, dims, type: this.u32(), offset: this.u64(`tensor ${name}'s offset`) });
    }
    return { version, metadata, tensors, end: this.at };
  }

  /** One value of type `type`; `key` names it in errors. */
  private value(type: number, depth: number, key: string): GgufMetadataValue {
    if (type === STRING) return this.string();
    if (type === ARRAY) return this.array(depth, key);
    const size = SCALAR_BYTES[type];
    if (size === undefined) throw new GgufHeaderError(`metadata ${key} has unknown value type ${type} (at byte ${this.at - 4})`);
    this.need(size);
    const value = this.scalar(type, this.at);
    this.at += size;
    return value;
  }

  private array(depth: number, key: string): GgufMetadataValue[] | StringTable {
    if (depth >= MAX_ARRAY_DEPTH) throw new GgufHeaderError(`metadata ${key} nests arrays deeper than ${MAX_ARRAY_DEPTH}`);
    const type = this.u32();
    const size = SCALAR_BYTES[type];
    const minBytes = type === STRING ? 8 : type === ARRAY ? 12 : size;
    if (minBytes === undefined) throw new GgufHeaderError(`metadata ${key} is an array of unknown value type ${type}`);
    const count = this.count(`metadata ${key}'s length`, minBytes);
    if (type === STRING) return this.strings(count);
    const values: GgufMetadataValue[] = [];
    if (size === undefined) {
      for (let i = 0; i < count; i++) values.push(this.value(type, depth + 1, key));
      return values;
    }
    // Fixed-size elements (a vocabulary's scores and types): one bounds check, one tight loop.
    this.need(count * size);
    for (let i = 0, at = this.at; i < count; i++, at += size) values.push(this.scalar(type, at));
    this.at += count * size;
    return values;
  }

  /** The fixed-size value of `type` at byte `at` (already bounds-checked). */
  private scalar(type: number, at: number): GgufMetadataValue {
    const view = this.view;
    switch (type) {
      case 0:
        return view.getUint8(at);
      case 1:
        return view.getInt8(at);
      case 2:
        return view.getUint16(at, true);
      case 3:
        return view.getInt16(at, true);
      case 4:
        return view.getUint32(at, true);
      case 5:
        return view.getInt32(at, true);
      case 6:
        return view.getFloat32(at, true);
      case 7:
        return view.getUint8(at) !== 0;
      case 10:
        return view.getBigUint64(at, true);
      case 11:
        return view.getBigInt64(at, true);
      default:
        return view.getFloat64(at, true);
    }
  }

  /** `count` strings into one table, decoded without a JS string apiece. */
  private strings(count: number): StringTable {
    const first = this.at;
    let bytes = 0;
    for (let i = 0; i < count; i++) {
      const length = this.count("string length", 1);
      this.need(length);
      this.at += length;
      bytes += length;
    }
    // A string's UTF-16 length is at most its UTF-8 length.
    const units = new Uint16Array(bytes);
    const ends = new Uint32Array(count);
    let out = 0;
    this.at = first;
    for (let i = 0; i < count; i++) {
      const length = this.u64("string length");
      out = this.decodeInto(units, out, this.at, this.at + length);
      this.at += length;
      ends[i] = out;
    }
    return new StringTable(out < bytes ? units.slice(0, out) : units, ends);
  }

  /**
   * UTF-8 bytes [from, to) as UTF-16 code units at `units[out]`; returns the end. Valid UTF-8 is
   * decoded here; anything else goes through TextDecoder (U+FFFD as it places them), which never
   * writes more units than bytes either.
   */
  private decodeInto(units: Uint16Array, out: number, from: number, to: number): number {
    const b = this.bytes;
    const start = out;
    for (let i = from; i < to; ) {
      const lead = b[i]!;
      if (lead < 0x80) {
        units[out++] = lead;
        i++;
        continue;
      }
      const more = lead >= 0xc2 && lead < 0xe0 ? 1 : lead >= 0xe0 && lead < 0xf0 ? 2 : lead >= 0xf0 && lead < 0xf5 ? 3 : 0;
      let point = lead & (0x3f >> more);
      let valid = more > 0 && i + more < to;
      for (let k = 1; valid && k <= more; k++) {
        const next = b[i + k]!;
        valid = (next & 0xc0) === 0x80;
        point = (point << 6) | (next & 0x3f);
      }
      // Overlong forms, surrogates and points past U+10FFFF are invalid too.
      if (
        !valid ||
        (more === 2 && (point < 0x800 || (point >= 0xd800 && point < 0xe000))) ||
        (more === 3 && (point < 0x10000 || point > 0x10ffff))
      ) {
        const text = this.decoder.decode(b.subarray(from, to));
        for (let k = 0; k < text.length; k++) units[start + k] = text.charCodeAt(k);
        return start + text.length;
      }
      if (point >= 0x10000) {
        units[out++] = 0xd800 + ((point - 0x10000) >> 10);
        units[out++] = 0xdc00 + ((point - 0x10000) & 0x3ff);
      } else {
        units[out++] = point;
      }
      i += more + 1;
    }
    return out;
  }

  private string(): string {
    const length = this.count("string length", 1);
    this.need(length);
    const text = this.decoder.decode(this.bytes.subarray(this.at, this.at + length));
    this.at += length;
    return text;
  }

  private u32(): number {
    this.need(4);
    this.at += 4;
    return this.view.getUint32(this.at - 4, true);
  }

  private u64(what: string): number {
    this.need(8);
    this.at += 8;
    const low = this.view.getUint32(this.at - 8, true);
    const high = this.view.getUint32(this.at - 4, true);
    if (high >= 2 ** 21) {
      throw new GgufHeaderError(`${what} ${this.view.getBigUint64(this.at - 8, true)} is too large (at byte ${this.at - 8})`);
    }
    return high * 2 ** 32 + low;
  }

  /** A u64 count of things of at least `minBytes` each, which must fit in the rest of the file. */
  private count(what: string, minBytes: number): number {
    const at = this.at;
    const value = this.u64(what);
    if (value * minBytes > this.fileSize - this.at) {
      throw new GgufHeaderError(`${what} ${value} (at byte ${at}) does not fit in the file: the header ends early, truncated?`);
    }
    return value;
  }

  /** `size` more bytes must be readable: in the file (else corrupt), and in `bytes` (else read more). */
  private need(size: number): void {
    const end = this.at + size;
    if (end > this.fileSize) throw new GgufHeaderError(`the header ends early (byte ${end} of a ${this.fileSize}-byte file): truncated?`);
    if (end > this.bytes.length) throw new GgufHeaderTruncated(end);
  }
}
