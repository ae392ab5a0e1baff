/**
 * GGUF v3 writer for files we produce (exported and trained models, test inputs). Metadata is
 * encoded by @huggingface/gguf's serializer; tensor infos and data (32-byte aligned) are ours.
 */
import { GGUFValueType, serializeGgufMetadata, type GGUFTypedMetadata } from "@huggingface/gguf";
import { ggmlBytes, ggmlType, GGML_TYPE_ID } from "./ggml-types.js";
import type { GgufValue } from "./gguf-values.js";

export interface GgufTensorInput {
  name: string;
  type: keyof typeof GGML_TYPE_ID;
  /** Outermost dimension first (PyTorch order); written reversed as GGUF's ne[]. */
  shape: number[];
  /** The tensor's bytes in that type's layout. */
  data: ArrayBufferView;
}

const ALIGNMENT = 32;

/** The whole file in one array (files under the 4 GiB one typed array holds; see ggufParts). */
export function encodeGguf(metadata: Record<string, GgufValue>, tensors: readonly GgufTensorInput[]): Uint8Array {
  const parts = ggufParts(metadata, tensors);
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/**
 * The file as consecutive pieces: header (metadata, tensor infos, padding), then each tensor's
 * bytes and its padding. Written one after another they make the file, of any size.
 */
export function ggufParts(metadata: Record<string, GgufValue>, tensors: readonly GgufTensorInput[]): Uint8Array[] {
  const typed = {
    version: { value: 3, type: GGUFValueType.UINT32 },
    tensor_count: { value: BigInt(tensors.length), type: GGUFValueType.UINT64 },
    kv_count: { value: BigInt(Object.keys(metadata).length), type: GGUFValueType.UINT64 },
    ...metadata,
  } as GGUFTypedMetadata;
  // Alignment 1: tensor infos follow the metadata directly; only the data section is aligned.
  const head = serializeGgufMetadata(typed, { alignment: 1 });

  const parts: Uint8Array[] = [head];
  const data: Uint8Array[] = [];
  let offset = 0;
  let headerBytes = head.length;
  for (const t of tensors) {
    const type = ggmlType(GGML_TYPE_ID[t.type])!;
    const bytes = ggmlBytes(
      type,
      t.shape.reduce((a, b) => a * b, 1),
    );
    if (bytes !== t.data.byteLength)
      throw new Error(`${t.name}: ${t.type} [${t.shape.join(", ")}] needs ${bytes} bytes, got ${t.data.byteLength}`);
    const info = tensorInfo(t, offset);
    parts.push(info);
    headerBytes += info.length;
    data.push(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
    if (pad(bytes) > bytes) data.push(new Uint8Array(pad(bytes) - bytes));
    offset += pad(bytes);
  }
  if (pad(headerBytes) > headerBytes) parts.push(new Uint8Array(pad(headerBytes) - headerBytes));
  return [...parts, ...data];
}

function tensorInfo(t: GgufTensorInput, offset: number): Uint8Array {
  const name = new TextEncoder().encode(t.name);
  const out = new Uint8Array(8 + name.length + 4 + 8 * t.shape.length + 4 + 8);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(name.length), true);
  out.set(name, 8);
  let at = 8 + name.length;
  view.setUint32(at, t.shape.length, true);
  at += 4;
  for (const d of [...t.shape].reverse()) {
    view.setBigUint64(at, BigInt(d), true);
    at += 8;
  }
  view.setUint32(at, GGML_TYPE_ID[t.type], true);
  view.setBigUint64(at + 4, BigInt(offset), true);
  return out;
}

function pad(n: number): number {
  return Math.ceil(n / ALIGNMENT) * ALIGNMENT;
}
