/**
 * safetensors reader: parses and validates the header, then reads tensors lazily by offset.
 * Format: u64-LE header length N, N bytes of JSON {name: {dtype, shape, data_offsets}}, then data.
 * Nothing here ever holds the whole file in memory.
 */
import { CheckpointError } from "../errors.js";
import type { ByteSource } from "./byte-source.js";
import { SAFETENSORS_DTYPE_BYTES, weightDtypeOf, type MatrixDtype, type WeightDtype } from "./dtype.js";

export interface TensorEntry {
  name: string;
  /** The dtype string as written in the file (F32, BF16, ...). */
  dtype: string;
  shape: number[];
  /** Absolute byte range in the file. */
  start: number;
  end: number;
}

/** A tensor as held in memory: stored width kept (f32 → Float32Array, f16/bf16 → Uint16Array, blocks → Uint8Array). */
export interface StoredTensor {
  dtype: MatrixDtype;
  shape: number[];
  data: Float32Array | Uint16Array | Uint8Array;
  /** An RMSNorm weight already stored as its gain 1 + w (llama.cpp's GGUF convention), not as w. */
  storedAsGain?: boolean;
}

/** What a safetensors file holds: float tensors only. */
export interface FloatTensor extends StoredTensor {
  dtype: WeightDtype;
  data: Float32Array | Uint16Array;
}

/** The safetensors format caps headers at 100 MB; a larger length means a corrupt file. */
const MAX_HEADER_BYTES = 100_000_000;

export class SafetensorsFile {
  private constructor(
    readonly source: ByteSource,
    readonly tensors: ReadonlyMap<string, TensorEntry>,
    readonly metadata: Readonly<Record<string, string>>,
  ) {}

  /** Parses and validates the header; on failure the source is closed (it would otherwise leak). */
  static async open(source: ByteSource): Promise<SafetensorsFile> {
    try {
      return await SafetensorsFile.parse(source);
    } catch (e) {
      await source.close();
      throw e;
    }
  }

  private static async parse(source: ByteSource): Promise<SafetensorsFile> {
    const file = source.name;
    if (source.size < 8) {
      throw new CheckpointError(`${file}: truncated: ${source.size} bytes, shorter than the 8-byte header length`, file);
    }
    const lengthBytes = await source.read(0, 8);
    const headerLength = Number(new DataView(lengthBytes.buffer, lengthBytes.byteOffset, 8).getBigUint64(0, true));
    if (headerLength < 2 || headerLength > MAX_HEADER_BYTES) {
      throw new CheckpointError(
        `${file}: header length ${headerLength} is not sane (expected 2..${MAX_HEADER_BYTES} bytes); not a safetensors file or corrupt`,
        file,
      );
    }
    if (8 + headerLength > source.size) {
      throw new CheckpointError(
        `${file}: header length ${headerLength} runs past the end of the ${source.size}-byte file (truncated or corrupt)`,
        file,
      );
    }
    const headerText = new TextDecoder("utf-8", { fatal: false }).decode(await source.read(8, headerLength));
    let header: unknown;
    try {
      header = JSON.parse(headerText);
    } catch (e) {
      throw new CheckpointError(`${file}: header is not valid JSON (${(e as Error).message})`, file);
    }
    if (typeof header !== "object" || header === null || Array.isArray(header)) {
      throw new CheckpointError(`${file}: header must be a JSON object`, file);
    }
    const dataStart = 8 + headerLength;
    const dataSize = source.size - dataStart;
    const tensors = new Map<string, TensorEntry>();
    let metadata: Record<string, string> = {};
    for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
      if (name === "__metadata__") {
        metadata = (raw ?? {}) as Record<string, string>;
        continue;
      }
      const entry = parseEntry(file, name, raw, dataSize);
      tensors.set(name, { ...entry, start: dataStart + entry.start, end: dataStart + entry.end });
    }
    checkCoverage(file, [...tensors.values()], dataStart, source.size);
    return new SafetensorsFile(source, tensors, metadata);
  }

  /** Reads one tensor in its stored width. F32/F16/BF16 only. */
  async readTensor(name: string): Promise<FloatTensor> {
    const entry = this.tensors.get(name);
    if (!entry) throw new CheckpointError(`${this.source.name}: no tensor named ${name}`, this.source.name, name);
    const dtype = weightDtypeOf(entry.dtype);
    if (!dtype) {
      throw new CheckpointError(
        `${this.source.name}: tensor ${name} has dtype ${entry.dtype}; gemma-ts reads F32, F16 and BF16`,
        this.source.name,
        name,
      );
    }
    const bytes = entry.end - entry.start;
    // A fresh ArrayBuffer per tensor keeps the typed-array views aligned.
    const buffer = new ArrayBuffer(bytes);
    await this.source.read(entry.start, bytes, new Uint8Array(buffer));
    const data = dtype === "f32" ? new Float32Array(buffer) : new Uint16Array(buffer);
    return { dtype, shape: entry.shape, data };
  }

  /** Stored bytes [byteOffset, byteOffset + into.length) of a tensor, read into `into`. */
  async readRange(name: string, byteOffset: number, into: Uint8Array): Promise<void> {
    const entry = this.tensors.get(name);
    if (!entry) throw new CheckpointError(`${this.source.name}: no tensor named ${name}`, this.source.name, name);
    if (byteOffset < 0 || byteOffset + into.length > entry.end - entry.start)
      throw new CheckpointError(`${this.source.name}: read past the end of tensor ${name}`, this.source.name, name);
    await this.source.read(entry.start + byteOffset, into.length, into);
  }

  close(): Promise<void> {
    return this.source.close();
  }
}

function parseEntry(file: string, name: string, raw: unknown, dataSize: number): TensorEntry {
  const fail = (why: string): never => {
    throw new CheckpointError(`${file}: tensor ${name}: ${why}`, file, name);
  };
  if (typeof raw !== "object" || raw === null) fail("header entry is not an object");
  const { dtype, shape, data_offsets: offsets } = raw as Record<string, unknown>;
  if (typeof dtype !== "string" || !(dtype in SAFETENSORS_DTYPE_BYTES)) fail(`unknown dtype ${JSON.stringify(dtype)}`);
  if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0))
    fail(`shape ${JSON.stringify(shape)} is not a list of non-negative integers`);
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isInteger(o) && o >= 0)) {
    fail(`data_offsets ${JSON.stringify(offsets)} must be two non-negative integers`);
  }
  const [start, end] = offsets as [number, number];
  if (end < start) fail(`data_offsets [${start}, ${end}] end before they begin`);
  if (end > dataSize) fail(`data_offsets [${start}, ${end}] run past the data area of ${dataSize} bytes (file truncated?)`);
  const dims = shape as number[];
  const expectedBytes = dims.reduce((a, b) => a * b, 1) * SAFETENSORS_DTYPE_BYTES[dtype as string]!;
  if (end - start !== expectedBytes) {
    fail(`holds ${end - start} bytes but ${dtype as string} × [${dims.join(", ")}] needs ${expectedBytes}`);
  }
  return { name, dtype: dtype as string, shape: dims, start, end };
}

/**
 * The format (and the reference Rust reader) requires the tensors to tile the data area exactly:
 * in offset order, each starts where the previous ends, the first at 0 and the last at the end of
 * the file. A header length off by even one byte shifts every tensor, so it must fail here rather
 * than load as garbage.
 */
function checkCoverage(file: string, entries: TensorEntry[], dataStart: number, fileSize: number): void {
  const sorted = [...entries].sort((a, b) => a.start - b.start || a.end - b.end);
  let at = dataStart;
  for (const cur of sorted) {
    if (cur.start < at) {
      throw new CheckpointError(
        `${file}: tensor ${cur.name} overlaps the tensor before it (bytes ${cur.start - dataStart}..${at - dataStart} of the data area)`,
        file,
        cur.name,
      );
    }
    if (cur.start > at) {
      throw new CheckpointError(
        `${file}: ${cur.start - at} bytes before tensor ${cur.name} belong to no tensor (data area offset ${at - dataStart}); the ` +
          `header length or offsets are wrong`,
        file,
        cur.name,
      );
    }
    at = cur.end;
  }
  if (at !== fileSize) {
    throw new CheckpointError(
      `${file}: the tensors end at byte ${at} of the file but it has ${fileSize}; the header length or offsets are wrong (corrupt file?)`,
      file,
    );
  }
}
