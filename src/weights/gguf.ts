/**
 * GGUF reader: @huggingface/gguf parses the header (metadata and tensor infos) through a ByteSource,
 * then every tensor is checked (known type, whole blocks, inside the file, no overlap) before any
 * data is read. Tensors are read lazily by offset, never the whole file.
 */
import { gguf, type MetadataValue } from "@huggingface/gguf";
import { CheckpointError } from "../errors.js";
import type { ByteSource } from "./byte-source.js";
import { ggmlBytes, ggmlType, type GgmlType } from "./ggml-types.js";

export interface GgufTensorEntry {
  name: string;
  type: GgmlType;
  /** Outermost dimension first (PyTorch order): GGUF's ne[] reversed. */
  shape: number[];
  /** Absolute byte range in the file. */
  start: number;
  end: number;
}

export type GgufMetadata = Readonly<Record<string, MetadataValue>>;

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
    let parsed: Awaited<ReturnType<typeof gguf>>;
    try {
      parsed = await gguf(`https://gemma-ts.invalid/${encodeURIComponent(name)}`, { fetch: rangeFetch(source) });
    } catch (e) {
      const why = e instanceof RangeError ? "the header ends early: file truncated?" : (e as Error).message;
      throw new CheckpointError(`${name}: not a valid GGUF file (${why})`, name);
    }
    if (!parsed.littleEndian) throw new CheckpointError(`${name}: big-endian GGUF files are not supported`, name);
    // The spec: a multiple of 8 (32 by default); a power of two because offsets are padded to it.
    // An unchecked 2^31 overflowed the parser's padding to a negative offset that passed the bounds.
    const alignment = (parsed.metadata as Record<string, unknown>)["general.alignment"];
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
    const dataStart = Number(parsed.tensorDataOffset);
    if (!Number.isSafeInteger(dataStart) || dataStart < parsed.tensorInfoByteRange[1] || dataStart % align !== 0) {
      throw new CheckpointError(`${name}: tensor data offset ${dataStart} is not a valid position after the header; corrupt file`, name);
    }
    // The parser reads past a short file as zeros; a header longer than the file means truncation.
    if (parsed.tensorInfoByteRange[1] > source.size || dataStart > source.size) {
      throw new CheckpointError(`${name}: not a valid GGUF file (the header ends early: file truncated?)`, name);
    }
    const tensors = new Map<string, GgufTensorEntry>();
    for (const info of parsed.tensorInfos) {
      const fail = (why: string): never => {
        throw new CheckpointError(`${name}: tensor ${info.name}: ${why}`, name, info.name);
      };
      if (tensors.has(info.name)) fail("appears twice");
      const type = ggmlType(info.dtype) ?? fail(`unknown GGML type ${info.dtype}`);
      const shape = info.shape.map(Number).reverse();
      if (shape.length === 0 || shape.some((d) => !Number.isSafeInteger(d) || d < 1)) fail(`bad shape [${shape.join(", ")}]`);
      const values = shape.reduce((a, b) => a * b, 1);
      const bytes = ggmlBytes(type, values);
      if (bytes === null || shape[shape.length - 1]! % type.blockValues !== 0) {
        fail(`rows of ${shape[shape.length - 1]} values do not split into ${type.name} blocks of ${type.blockValues}`);
      }
      const offset = Number(info.offset);
      if (!Number.isSafeInteger(offset) || offset < 0 || offset % align !== 0) fail(`offset ${offset} is not aligned to ${align} bytes`);
      const start = dataStart + offset;
      const end = start + bytes!;
      if (end > source.size) fail(`bytes ${start}..${end} run past the end of the file (${source.size} bytes): truncated?`);
      tensors.set(info.name, { name: info.name, type, shape, start, end });
    }
    checkNoOverlap(name, [...tensors.values()]);
    const metadata: Record<string, MetadataValue> = {};
    for (const [key, value] of Object.entries(parsed.metadata)) {
      if (key !== "version" && key !== "tensor_count" && key !== "kv_count") metadata[key] = value as MetadataValue;
    }
    if (Array.isArray(metadata[TOKENS_KEY])) {
      const header = await source.read(0, parsed.tensorInfoByteRange[0]);
      metadata[TOKENS_KEY] = readTokenStrings(header, Number(parsed.metadata.kv_count)) ?? metadata[TOKENS_KEY];
    }
    return new GgufFile(source, metadata, tensors);
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

const TOKENS_KEY = "tokenizer.ggml.tokens";

/**
 * The vocabulary's strings decoded with their byte-order marks kept: the parser's TextDecoder drops
 * a leading U+FEFF, which turns Gemma's piece "\uFEFF#" into a second "#". Walks the metadata
 * section (GGUF v2/v3 layout) to the tokens array; null if the layout is not as expected.
 */
function readTokenStrings(header: Uint8Array, kvCount: number): string[] | null {
  const view = new DataView(header.buffer, header.byteOffset, header.byteLength);
  const decoder = new TextDecoder("utf-8", { ignoreBOM: true });
  const SIZES: Record<number, number> = { 0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8 };
  let at = 24;
  const string = (): string => {
    const length = Number(view.getBigUint64(at, true));
    const text = decoder.decode(header.subarray(at + 8, at + 8 + length));
    at += 8 + length;
    return text;
  };
  const skip = (type: number): void => {
    if (type === 8) {
      at += 8 + Number(view.getBigUint64(at, true));
    } else if (type === 9) {
      const inner = view.getUint32(at, true);
      const count = Number(view.getBigUint64(at + 4, true));
      at += 12;
      for (let i = 0; i < count; i++) skip(inner);
    } else {
      const size = SIZES[type];
      if (size === undefined) throw new RangeError(`metadata type ${type}`);
      at += size;
    }
  };
  try {
    for (let kv = 0; kv < kvCount; kv++) {
      const key = string();
      const type = view.getUint32(at, true);
      at += 4;
      if (key !== TOKENS_KEY) {
        skip(type);
        continue;
      }
      if (type !== 9 || view.getUint32(at, true) !== 8) return null;
      const count = Number(view.getBigUint64(at + 4, true));
      at += 12;
      return Array.from({ length: count }, string);
    }
  } catch {
    return null;
  }
  return null;
}

/** A `fetch` that answers the parser's Range requests from a ByteSource (works the same in a browser). */
function rangeFetch(source: ByteSource): typeof fetch {
  return (async (_url: unknown, init?: RequestInit) => {
    const range = new Headers(init?.headers).get("range") ?? "";
    const match = /bytes=(\d+)-(\d+)/.exec(range);
    const from = match ? Math.min(Number(match[1]), source.size) : 0;
    const to = match ? Math.min(Number(match[2]) + 1, source.size) : source.size;
    const body = await source.read(from, to - from, new Uint8Array(new ArrayBuffer(to - from)));
    return new Response(body.buffer as ArrayBuffer, {
      status: 206,
      headers: { "content-range": `bytes ${from}-${to - 1}/${source.size}` },
    });
  }) as typeof fetch;
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

  array<T extends "string" | "number">(key: string, kind: T): (T extends "string" ? string : number)[] {
    const v = this.metadata[key];
    if (!Array.isArray(v) || !v.every((x) => typeof x === kind)) {
      throw new CheckpointError(
        `${this.source}: GGUF metadata ${key} ${v === undefined ? "is missing" : `must be a list of ${kind}s`}`,
        this.source,
      );
    }
    return v as (T extends "string" ? string : number)[];
  }
}
