/**
 * GGUF reader: the header (metadata and tensor infos, gguf-header.ts) is parsed from one read,
 * then every tensor is checked (known type, whole blocks, inside the file, no overlap) before any
 * data is read. Tensors are read lazily by offset, never the whole file.
 */
import { CheckpointError } from "../errors.js";
import type { ByteSource } from "./byte-source.js";
import { ggmlBytes, ggmlType, type GgmlType } from "./ggml-types.js";
import { StringTable } from "./string-table.js";
import { freeBuffer } from "./free-buffer.js";
import { GgufHeaderError, GgufHeaderTruncated, parseGgufHeader, type GgufHeader, type GgufMetadataValue } from "./gguf-header.js";

export interface GgufTensorEntry {
  name: string;
  type: GgmlType;
  /** Outermost dimension first (PyTorch order): GGUF's ne[] reversed. */
  shape: number[];
  /** Absolute byte range in the file. */
  start: number;
  end: number;
}

export type { GgufMetadataValue } from "./gguf-header.js";
export type GgufMetadata = Readonly<Record<string, GgufMetadataValue>>;

/** The first read of a header: a 256k-token vocabulary makes a Gemma header about 6 MB. */
const FIRST_HEADER_READ = 8 * 1024 * 1024;

export class GgufFile {
  private constructor(
    readonly source: ByteSource,
    readonly metadata: GgufMetadata,
    readonly tensors: ReadonlyMap<string, GgufTensorEntry>,
  ) {}

  static async open(source: ByteSource): Promise<GgufFile> {
    const name = source.name;
    const magic = await source.read(0, Math.min(4, source.size));
    if (magic.length < 4 || String.fromCharCode(...magic) !== "GGUF") {
      throw new CheckpointError(`${name}: not a GGUF file (it does not start with the bytes "GGUF")`, name);
    }
    const header = await readHeader(source);
    // The spec: a multiple of 8 (32 by default); a power of two because offsets are padded to it.
    const alignment = header.metadata.get("general.alignment");
    if (
      alignment !== undefined &&
      (typeof alignment !== "number" ||
        !Number.isInteger(alignment) ||
        alignment < 8 ||
        alignment > 65536 ||
        (alignment & (alignment - 1)) !== 0)
    ) {
      throw new CheckpointError(
        `${name}: general.alignment ${JSON.stringify(alignment)} is not a power of two from 8 to 65536; corrupt file`,
        name,
      );
    }
    const align = typeof alignment === "number" ? alignment : 32;
    const dataStart = Math.ceil(header.end / align) * align;
    if (dataStart > source.size) {
      throw new CheckpointError(`${name}: not a valid GGUF file (the header ends early: file truncated?)`, name);
    }
    const tensors = new Map<string, GgufTensorEntry>();
    for (const info of header.tensors) {
      const fail = (why: string): never => {
        throw new CheckpointError(`${name}: tensor ${info.name}: ${why}`, name, info.name);
      };
      if (tensors.has(info.name)) fail("appears twice");
      const type = ggmlType(info.type) ?? fail(`unknown GGML type ${info.type}`);
      const shape = [...info.dims].reverse();
      const values = shape.reduce((a, b) => a * b, 1);
      if (shape.some((d) => d < 1) || !Number.isSafeInteger(values)) fail(`bad shape [${shape.join(", ")}]`);
      const bytes = ggmlBytes(type, values);
      if (bytes === null || shape[shape.length - 1]! % type.blockValues !== 0) {
        fail(`rows of ${shape[shape.length - 1]} values do not split into ${type.name} blocks of ${type.blockValues}`);
      }
      if (info.offset % align !== 0) fail(`offset ${info.offset} is not aligned to ${align} bytes`);
      const start = dataStart + info.offset;
      const end = start + bytes!;
      if (end > source.size) fail(`bytes ${start}..${end} run past the end of the file (${source.size} bytes): truncated?`);
      tensors.set(info.name, { name: info.name, type, shape, start, end });
    }
    checkNoOverlap(name, [...tensors.values()]);
    return new GgufFile(source, Object.fromEntries(header.metadata), tensors);
  }

  /** The raw bytes of a tensor, in a fresh buffer (aligned for typed-array views). */
  async readBytes(entry: GgufTensorEntry): Promise<Uint8Array> {
    const out = new Uint8Array(new ArrayBuffer(entry.end - entry.start));
    return this.source.read(entry.start, out.length, out);
  }

  close(): Promise<void> {
    return this.source.close();
  }
}

/** The header, read again larger while it goes on past the bytes read. */
async function readHeader(source: ByteSource): Promise<GgufHeader> {
  let length = Math.min(source.size, FIRST_HEADER_READ);
  for (;;) {
    const into = new Uint8Array(new ArrayBuffer(length));
    try {
      return parseGgufHeader(await source.read(0, length, into), source.size);
    } catch (e) {
      if (e instanceof GgufHeaderTruncated) length = Math.min(source.size, Math.max(2 * length, e.bytes));
      else if (e instanceof GgufHeaderError) throw new CheckpointError(`${source.name}: not a valid GGUF file (${e.message})`, source.name);
      else throw e;
    } finally {
      // The parsed header holds copies, never views of these bytes.
      freeBuffer(into);
    }
  }
}

function checkNoOverlap(file: string, entries: GgufTensorEntry[]): void {
  const sorted = entries.sort((a, b) => a.start - b.start);
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i]!.start < sorted[i - 1]!.end) {
      throw new CheckpointError(`${file}: tensors ${sorted[i - 1]!.name} and ${sorted[i]!.name} overlap`, file, sorted[i]!.name);
    }
  }
}

/** A float32 value as the shortest decimal that rounds to it (1e-6, not 9.99999997e-7), as it was written. */
function shortestFloat32(value: number): number {
  if (Number.isInteger(value) || Math.fround(value) !== value) return value;
  for (let digits = 1; digits <= 9; digits++) {
    const candidate = Number(value.toPrecision(digits));
    if (Math.fround(candidate) === value) return candidate;
  }
  return value;
}

/** Typed accessors for metadata values, naming the key when one is missing or of the wrong type. */
export class GgufMetadataReader {
  constructor(
    private readonly metadata: GgufMetadata,
    private readonly source: string,
  ) {}

  has(key: string): boolean {
    return this.metadata[key] !== undefined;
  }

  string(key: string): string {
    const v = this.metadata[key];
    if (typeof v !== "string")
      throw new CheckpointError(`${this.source}: GGUF metadata ${key} ${v === undefined ? "is missing" : "must be a string"}`, this.source);
    return v;
  }

  optionalString(key: string): string | undefined {
    return this.has(key) ? this.string(key) : undefined;
  }

  number(key: string): number {
    const v = this.metadata[key];
    const n = typeof v === "bigint" ? Number(v) : v;
    if (typeof n !== "number" || !Number.isFinite(n)) {
      const why = v === undefined ? "is missing" : Array.isArray(v) ? "is a list (per-layer values are not supported)" : "must be a number";
      throw new CheckpointError(`${this.source}: GGUF metadata ${key} ${why}`, this.source);
    }
    return shortestFloat32(n);
  }

  optionalNumber(key: string): number | undefined {
    return this.has(key) ? this.number(key) : undefined;
  }

  optionalBoolean(key: string): boolean | undefined {
    const v = this.metadata[key];
    if (v === undefined) return undefined;
    if (typeof v !== "boolean") throw new CheckpointError(`${this.source}: GGUF metadata ${key} must be a boolean`, this.source);
    return v;
  }

  /** A number, or a list of numbers (per-layer values, e.g. gemma4.attention.head_count_kv); undefined when absent. */
  optionalNumbers(key: string): number | number[] | undefined {
    const v = this.metadata[key];
    if (v === undefined) return undefined;
    if (Array.isArray(v)) return this.array(key, "number").map((n) => shortestFloat32(n));
    return this.number(key);
  }

  /** A list of booleans (gemma4.attention.sliding_window_pattern); undefined when absent. */
  optionalBooleans(key: string): boolean[] | undefined {
    const v = this.metadata[key];
    if (v === undefined) return undefined;
    if (!Array.isArray(v) || !v.every((x) => typeof x === "boolean"))
      throw new CheckpointError(`${this.source}: GGUF metadata ${key} must be a list of booleans`, this.source);
    return v as boolean[];
  }

  /** A list of strings as held (a vocabulary stays one table, not a string per piece). */
  strings(key: string): StringTable {
    const v = this.metadata[key];
    if (!(v instanceof StringTable)) {
      throw new CheckpointError(
        `${this.source}: GGUF metadata ${key} ${v === undefined ? "is missing" : "must be a list of strings"}`,
        this.source,
      );
    }
    return v;
  }

  array<T extends "string" | "number">(key: string, kind: T): (T extends "string" ? string : number)[] {
    const v = this.metadata[key];
    if (kind === "string" && v instanceof StringTable) return v.toArray() as (T extends "string" ? string : number)[];
    if (!Array.isArray(v) || !v.every((x) => typeof x === kind)) {
      throw new CheckpointError(
        `${this.source}: GGUF metadata ${key} ${v === undefined ? "is missing" : `must be a list of ${kind}s`}`,
        this.source,
      );
    }
    return v as (T extends "string" ? string : number)[];
  }
}
