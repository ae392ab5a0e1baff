/**
 * Writes a Gemma checkpoint (Gemma 1-4) as a GGUF file in llama.cpp's layout (names, metadata, norm
 * weights stored as their gains), with every matrix as F32, F16, Q8_0 or Q4_0, and optionally a
 * SentencePiece vocabulary in the metadata. What GgufCheckpoint reads back is the same model.
 */
import type { GemmaConfig } from "./gemma/config.js";
import { ConfigError } from "../errors.js";
import type { TensorSource } from "../weights/checkpoint.js";
import { f32ToF16 } from "../weights/dtype.js";
import type { GgufTensorInput } from "../weights/gguf-writer.js";
import { gguv, type GgufValue } from "../weights/gguf-values.js";
import { toBlocks, widenRow } from "../weights/matrix-rows.js";
import { ggufTensorName } from "./gguf-checkpoint.js";
import { ggufCompatible, ggufMetadata, ROPE_FREQS_TENSOR, ropeFreqsTensor } from "./gguf-config.js";
import { PieceType } from "../tokenizer/sentencepiece.js";
import { expectedTensors } from "./gemma/weights.js";
import { textModelTensors } from "./gemma/text-tensors.js";

/** The writer and its serializer package (about 11 MiB of a process) load when a file is written. */
const writer = () => import("../weights/gguf-writer.js");

export type GgufMatrixType = "F32" | "F16" | "Q8_0" | "Q4_0";

export interface GgufVocabulary {
  pieces: string[];
  scores: number[];
  types: number[];
  chatTemplate?: string;
}

export interface GgufExportOptions {
  /** Type of every 2-D tensor (norms are always F32, as llama.cpp writes them). */
  matrixType: GgufMatrixType;
  vocabulary?: GgufVocabulary;
  name?: string;
}

/** The model as one GGUF file in memory (under 4 GiB; larger ones: ggufModelParts). */
export async function encodeGgufModel(ckpt: TensorSource, config: GemmaConfig, options: GgufExportOptions): Promise<Uint8Array> {
  const { encodeGguf } = await writer();
  return encodeGguf(metadataOf(config, options), await ggufTensors(ckpt, config, options));
}

/** The model's GGUF file as consecutive pieces (ggufParts), for files of any size. */
export async function ggufModelParts(ckpt: TensorSource, config: GemmaConfig, options: GgufExportOptions): Promise<Uint8Array[]> {
  const { ggufParts } = await writer();
  return ggufParts(metadataOf(config, options), await ggufTensors(ckpt, config, options));
}

async function ggufTensors(ckpt: TensorSource, config: GemmaConfig, options: GgufExportOptions): Promise<GgufTensorInput[]> {
  const incompatible = ggufCompatible(config);
  if (incompatible) throw new ConfigError(`cannot write this model as GGUF: ${incompatible}`);
  const tensors: GgufTensorInput[] = [];
  const source = config.family === "gemma3" || config.family === "gemma4" ? textModelTensors(ckpt) : ckpt;
  for (const [name, shape] of expectedTensors(config)) {
    const location = source.tensor(name);
    if (!location) throw new ConfigError(`${ckpt.dir}: missing tensor ${name}`);
    const stored = await location.file.readTensor(name);
    const cols = shape[shape.length - 1]!;
    const rows = shape.slice(0, -1).reduce((a, b) => a * b, 1);
    const ggufName = ggufTensorName(name, config.family);
    if (shape.length === 1) {
      const values = new Float32Array(cols);
      widenRow(values, stored.data, stored.dtype, 0, cols);
      // Norm weights are written as the gains the forward pass uses (offset 1 for Gemma 1-3, 0 for Gemma 4).
      const offset = name.endsWith("norm.weight") && !stored.storedAsGain ? config.normGainOffset : 0;
      tensors.push({ name: ggufName, type: "F32", shape, data: offset === 0 ? values : values.map((w) => offset + w) });
      continue;
    }
    // Rows that do not split into 32-value blocks (Gemma 4's per-layer projections at small sizes) stay F32, as llama.cpp keeps them.
    const type = cols % 32 === 0 || options.matrixType === "F16" ? options.matrixType : "F32";
    tensors.push({ name: ggufName, type, shape, data: encodeMatrix(stored.data, stored.dtype, rows, cols, type) });
  }
  const freqs = ropeFreqsTensor(config);
  if (freqs) tensors.push({ name: ROPE_FREQS_TENSOR, type: "F32", shape: [freqs.length], data: freqs });
  return tensors;
}

function encodeMatrix(
  data: Parameters<typeof widenRow>[1],
  dtype: Parameters<typeof widenRow>[2],
  rows: number,
  cols: number,
  type: GgufMatrixType,
): ArrayBufferView {
  if (type === "Q8_0" || type === "Q4_0") return toBlocks(data, dtype, rows, cols, type === "Q8_0" ? "q8_0" : "q4_0");
  const out = type === "F32" ? new Float32Array(rows * cols) : new Uint16Array(rows * cols);
  const row = new Float32Array(cols);
  for (let r = 0; r < rows; r++) {
    widenRow(row, data, dtype, r, cols);
    if (out instanceof Float32Array) out.set(row, r * cols);
    else for (let c = 0; c < cols; c++) out[r * cols + c] = f32ToF16(row[c]!);
  }
  return out;
}

function metadataOf(c: GemmaConfig, options: GgufExportOptions): Record<string, GgufValue> {
  const m: Record<string, GgufValue> = {
    "general.architecture": gguv.str(c.family),
    "general.name": gguv.str(options.name ?? `${c.family} (gemma-ts)`),
    ...ggufMetadata(c),
  };
  if (options.vocabulary) Object.assign(m, vocabularyMetadata(options.vocabulary));
  m["tokenizer.ggml.bos_token_id"] = gguv.u32(c.bosTokenId);
  m["tokenizer.ggml.eos_token_id"] = gguv.u32(c.eosTokenIds[0]!);
  m["tokenizer.ggml.padding_token_id"] = gguv.u32(c.padTokenId);
  return m;
}

/** Chat markers: llama.cpp expects them as CONTROL pieces (as in Google's own Gemma GGUFs), not user-defined. */
const CONTROL_PIECES = new Set(["<start_of_turn>", "<end_of_turn>"]);

/** The tokenizer.ggml.* keys of a SentencePiece vocabulary (Gemma style: no dummy prefix, BOS added). */
function vocabularyMetadata(v: GgufVocabulary): Record<string, GgufValue> {
  const types = v.types.map((t, id) => (CONTROL_PIECES.has(v.pieces[id]!) ? PieceType.control : t));
  const unknown = types.indexOf(PieceType.unknown);
  const m: Record<string, GgufValue> = {
    "tokenizer.ggml.model": gguv.str("llama"),
    "tokenizer.ggml.tokens": gguv.strings(v.pieces),
    "tokenizer.ggml.scores": gguv.f32s(v.scores),
    "tokenizer.ggml.token_type": gguv.i32s(types),
    ...(unknown >= 0 ? { "tokenizer.ggml.unknown_token_id": gguv.u32(unknown) } : {}),
    "tokenizer.ggml.add_space_prefix": gguv.bool(false),
    "tokenizer.ggml.add_bos_token": gguv.bool(true),
  };
  if (v.chatTemplate) m["tokenizer.chat_template"] = gguv.str(v.chatTemplate);
  return m;
}

/** A vocabulary-only GGUF (no tensors): what `--tokenizer file.gguf` and a folder's tokenizer.gguf hold. */
export async function encodeGgufVocabulary(
  v: GgufVocabulary,
  ids: { bos: number; eos: number; pad: number },
  name = "vocabulary",
): Promise<Uint8Array> {
  const { encodeGguf } = await writer();
  return encodeGguf(
    {
      "general.architecture": gguv.str("gemma2"),
      "general.name": gguv.str(name),
      ...vocabularyMetadata(v),
      "tokenizer.ggml.bos_token_id": gguv.u32(ids.bos),
      "tokenizer.ggml.eos_token_id": gguv.u32(ids.eos),
      "tokenizer.ggml.padding_token_id": gguv.u32(ids.pad),
    },
    [],
  );
}
