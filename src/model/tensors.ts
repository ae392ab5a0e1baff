/**
 * What every family shares about its tensors: checking a checkpoint against the tensors a config
 * needs (presence, shape, dtype, unused tensors, layer count), and reading them into memory in
 * their stored width or quantized, with LoRA updates merged.
 */
import type { Kernels, MatrixDtype, Weight } from "../backend/kernels.js";
import { CheckpointError } from "../errors.js";
import type { TensorSource } from "../weights/checkpoint.js";
import { matrixRowBytes, narrows, toBlocks, widenRow } from "../weights/matrix-rows.js";
import { isBlockDtype } from "../weights/block-layout.js";
import { mergeLoraRow, type LoraDelta } from "./lora-adapter.js";
import type { StoredTensor } from "../weights/safetensors.js";
import { Q8_0_BLOCK } from "../weights/q8_0.js";

/** Stored types a matrix can be read from. */
const READABLE_DTYPES = new Set(["F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_K", "Q5_K", "Q6_K"]);

/** Stored types whose bytes the kernels take as they are. */
const DIRECT_DTYPES: Readonly<Record<string, MatrixDtype>> = {
  F32: "f32",
  F16: "f16",
  BF16: "bf16",
  Q8_0: "q8_0",
  Q4_0: "q4_0",
  Q4_K: "q4_k",
  Q5_K: "q5_k",
  Q6_K: "q6_k",
};

/** Weight quantization on load. */
export type Quantization = "q8_0" | "q4_0" | "none";

export interface LoadWeightsOptions {
  onProgress?: (loadedBytes: number, totalBytes: number) => void;
  onDebug?: (message: string) => void;
  /** Each matrix as soon as it is read (a backend moves it into its own memory: Kernels.adopt). */
  onMatrix?: (weight: Weight) => void;
  /** Quantizes a float matrix on load where the backend can (Kernels.quantize); else TypeScript's toBlocks. */
  quantizeMatrix?: (weight: Weight, target: "q8_0" | "q4_0") => Weight;
  /** Reads a matrix's stored bytes straight into the backend's memory where file and backend can (Kernels.receive). */
  receiveMatrix?: Kernels["receive"];
  /** "q8_0" / "q4_0" quantize every matrix whose rows split into 32-value blocks; "none" keeps stored width (default). */
  quant?: Quantization;
  /** LoRA updates merged into their weights as they load (merged matrices are held in f32 unless quantized). */
  lora?: ReadonlyMap<string, LoraDelta>;
  /**
   * Load even when the file holds tensors the config does not use (default false: that means the
   * config is wrong, e.g. too few layers or Gemma 1's model_type on Gemma 2 weights).
   */
  allowUnusedTensors?: boolean;
}

/**
 * Tensors some exporters add that a Gemma model rightly ignores: the tied head's copy (HF lm_head,
 * GGUF output), RoPE buffers (GGUF rope_freqs is read into the config instead).
 */
const HARMLESS_EXTRAS = [/^lm_head\.weight$/, /^output\.weight$/, /\.rotary_emb\.inv_freq$/, /^rope_freqs\.weight$/];

export interface ValidateOptions {
  onDebug?: (message: string) => void;
  allowUnusedTensors?: boolean;
  /** Tensors the file may hold that this config rightly does not read (reported through onDebug). */
  skipped?: ReadonlySet<string>;
}

/**
 * Checks presence, shape and dtype of every expected tensor before reading any of them; returns
 * their total size in bytes. Tensors the config does not use are an error (a config that does not
 * match its weights), except known harmless ones or with `allowUnusedTensors` (then reported
 * through onDebug).
 */
export function validateTensors(
  ckpt: TensorSource,
  expected: ReadonlyMap<string, number[]>,
  family: string,
  options: ValidateOptions = {},
): number {
  const { onDebug, allowUnusedTensors = false } = options;
  let totalBytes = 0;
  for (const [name, shape] of expected) {
    const found = ckpt.tensor(name);
    if (!found) throw new CheckpointError(`${ckpt.dir}: missing tensor ${name} (expected shape [${shape.join(", ")}])`, ckpt.dir, name);
    const { entry, file } = found;
    if (entry.shape.length !== shape.length || entry.shape.some((d, i) => d !== shape[i])) {
      throw new CheckpointError(
        `${file.source.name}: tensor ${name} has shape [${entry.shape.join(", ")}], expected [${shape.join(", ")}] from config.json`,
        file.source.name,
        name,
      );
    }
    if (!READABLE_DTYPES.has(entry.dtype)) {
      throw new CheckpointError(
        `${file.source.name}: tensor ${name} has dtype ${entry.dtype}; gemma-ts reads F32, F16 and BF16 (and in GGUF files Q8_0, Q4_0, ` +
          `Q4_K, Q5_K, Q6_K)`,
        file.source.name,
        name,
      );
    }
    totalBytes += entry.end - entry.start;
  }
  const unused = ckpt.tensorNames().filter((name) => !expected.has(name));
  const harmful = unused.filter((name) => !HARMLESS_EXTRAS.some((re) => re.test(name)) && !options.skipped?.has(name));
  if (harmful.length > 0 && !allowUnusedTensors) {
    const shown = harmful.slice(0, 3).join(", ") + (harmful.length > 3 ? ` and ${harmful.length - 3} more` : "");
    throw new CheckpointError(
      `${ckpt.dir}: ${harmful.length} tensor(s) are not used by a ${family} model with this config (${shown}); the config does not ` +
        `match the weights (wrong model_type, layer count or layer types?). To load anyway, pass allowUnusedTensors ` +
        `(--allow-unused-tensors)`,
      ckpt.dir,
      harmful[0],
    );
  }
  for (const name of unused) onDebug?.(`ignoring tensor ${name}: not part of a ${family} model`);
  return totalBytes;
}

/**
 * The layer count against the file, before anything is built per layer: a config (or GGUF
 * block_count) claiming a million layers must fail at once, not allocate names for all of them.
 */
export function checkLayerCount(ckpt: TensorSource, nLayers: number, options: ValidateOptions = {}): void {
  let held = 0;
  for (const name of ckpt.tensorNames()) {
    const m = /^(?:model\.layers|blk)\.(\d+)\./.exec(name); // HF names, or GGUF names left unmapped
    if (m) held = Math.max(held, Number(m[1]) + 1);
  }
  if (nLayers > held || (nLayers < held && !options.allowUnusedTensors)) {
    throw new CheckpointError(
      `${ckpt.dir}: the config says ${nLayers} layers but the weights hold ${held}; the config does not match the weights`,
      ckpt.dir,
    );
  }
}

/** Reads validated tensors by name, reporting progress against `totalBytes`. */
export function tensorReader(ckpt: TensorSource, totalBytes: number, options: LoadWeightsOptions = {}) {
  const { onProgress, onMatrix, quant, lora } = options;
  let loadedBytes = 0;
  onProgress?.(0, totalBytes);
  const read = async (name: string): Promise<StoredTensor> => {
    const { file, entry } = ckpt.tensor(name)!;
    const tensor = await file.readTensor(name);
    loadedBytes += entry.end - entry.start;
    onProgress?.(loadedBytes, totalBytes);
    return tensor;
  };
  const matrix = async (name: string): Promise<Weight> => {
    const direct = await receive(name);
    if (direct) return direct;
    let t = await read(name);
    const [rows, cols] = [t.shape[0]!, t.shape[1]!];
    const delta = lora?.get(name);
    if (delta) t = { dtype: "f32", shape: t.shape, data: mergeLora(t, delta, rows, cols) };
    return place({ dtype: t.dtype, rows, cols, data: t.data });
  };
  /** A matrix read: quantized when asked (and its rows split into blocks), then handed to the backend. */
  const place = (read: Weight): Weight => {
    let weight = read;
    const { dtype, rows, cols } = read;
    // Q8_0 and Q4_0 share a 32-value block; a matrix already smaller than asked stays as it is.
    if (quant && quant !== "none" && cols % Q8_0_BLOCK === 0 && narrows(dtype, quant)) {
      const fromFloats = dtype === "f32" || dtype === "bf16" || dtype === "f16";
      weight =
        options.quantizeMatrix && fromFloats
          ? options.quantizeMatrix(weight, quant)
          : { dtype: quant, rows, cols, data: toBlocks(read.data, dtype, rows, cols, quant) };
    }
    onMatrix?.(weight);
    return weight;
  };
  /**
   * A stack of matrices [count, rows, cols] (mixture-of-experts weights) as `count` matrices, each
   * cut into consecutive row ranges of `split` rows (gate and up of one expert).
   */
  const stackedMatrices = async (name: string, split: number[]): Promise<Weight[][]> => {
    const t = await read(name);
    const [count, rows, cols] = [t.shape[0]!, t.shape[1]!, t.shape[2]!];
    const out: Weight[][] = [];
    for (let e = 0; e < count; e++) {
      let row = e * rows;
      out.push(
        split.map((n) => {
          const data = rowRange(t.data, t.dtype, row, n, cols);
          row += n;
          return place({ dtype: t.dtype, rows: n, cols, data });
        }),
      );
    }
    return out;
  };
  /**
   * A matrix read straight into the backend's memory: its stored bytes are what the kernels take
   * (or f32/bf16/f16 to quantize on the way) and no LoRA update is merged into it; else null.
   */
  const receive = async (name: string): Promise<Weight | null> => {
    const { file, entry } = ckpt.tensor(name)!;
    const dtype = DIRECT_DTYPES[entry.dtype];
    if (!options.receiveMatrix || !file.readRange || !dtype || lora?.has(name) || entry.shape.length !== 2) return null;
    const [rows, cols] = [entry.shape[0]!, entry.shape[1]!];
    const fromFloats = dtype === "f32" || dtype === "bf16" || dtype === "f16";
    const target = quant && quant !== "none" && cols % Q8_0_BLOCK === 0 && narrows(dtype, quant) ? quant : null;
    if (target && !fromFloats) return null;
    const weight = await options.receiveMatrix(
      { dtype, rows, cols },
      (into, byteOffset) => file.readRange!(name, byteOffset, into),
      target,
    );
    loadedBytes += entry.end - entry.start;
    onProgress?.(loadedBytes, totalBytes);
    return weight;
  };
  const widen = (t: StoredTensor): Float32Array => {
    const out = new Float32Array(t.shape.reduce((a, b) => a * b, 1));
    widenRow(out, t.data, t.dtype, 0, out.length);
    return out;
  };
  /** A small tensor widened to float32. */
  const vector = async (name: string): Promise<Float32Array> => widen(await read(name));
  /**
   * An RMSNorm weight as its gain `offset + w`: Gemma 1-3 store offsets from 1 (GEMMA2.md §2),
   * Gemma 4 the gain itself (offset 0); GGUF files hold the gain already.
   */
  const gain = async (name: string, offset: 0 | 1 = 1): Promise<Float32Array> => {
    const t = await read(name);
    return t.storedAsGain || offset === 0 ? widen(t) : widen(t).map((w) => 1 + w);
  };
  return { matrix, stackedMatrices, vector, gain };
}

export type TensorReader = ReturnType<typeof tensorReader>;

/** A copy of rows [first, first + count) of a [*, cols] matrix in any held form. */
function rowRange(data: Weight["data"], dtype: MatrixDtype, first: number, count: number, cols: number): Weight["data"] {
  if (isBlockDtype(dtype)) {
    const rowBytes = matrixRowBytes(dtype, cols);
    return data.slice(first * rowBytes, (first + count) * rowBytes);
  }
  return data.slice(first * cols, (first + count) * cols);
}

function mergeLora(t: StoredTensor, delta: LoraDelta, rows: number, cols: number): Float32Array {
  if (delta.a.length !== delta.rank * cols || delta.b.length !== rows * delta.rank) {
    throw new CheckpointError(
      `LoRA adapter does not fit its weight: A is ${delta.a.length / delta.rank}-wide and B ${delta.b.length / delta.rank}-tall, the ` +
        `weight is [${rows}, ${cols}]`,
    );
  }
  const merged = new Float32Array(rows * cols);
  const row = new Float32Array(cols);
  for (let r = 0; r < rows; r++) {
    widenRow(row, t.data, t.dtype, r, cols);
    mergeLoraRow(row, r, delta, cols);
    merged.set(row, r * cols);
  }
  return merged;
}

/** Bytes the typed arrays reachable from a weights object occupy (shared arrays counted once). */
export function heldBytes(weights: object): number {
  const seen = new Set<ArrayBufferView>();
  const visit = (value: unknown): void => {
    if (ArrayBuffer.isView(value)) seen.add(value);
    else if (typeof value === "object" && value !== null) Object.values(value).forEach(visit);
  };
  visit(weights);
  return [...seen].reduce((sum, a) => sum + a.byteLength, 0);
}
