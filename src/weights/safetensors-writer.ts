/** Writes safetensors bytes (for checkpoints we produce: converted, generated or trained models). */
import type { WeightDtype } from "./dtype.js";

const DTYPE_NAMES = { f32: "F32", f16: "F16", bf16: "BF16" } as const;

export interface NamedTensor {
  name: string;
  dtype: WeightDtype;
  shape: number[];
  data: Float32Array | Uint16Array;
}

/** Header JSON padded with spaces to a multiple of 8 bytes, then tensors back to back in the given order. */
export function encodeSafetensors(tensors: readonly NamedTensor[], metadata: Record<string, string> = { format: "pt" }): Uint8Array {
  const header: Record<string, unknown> = { __metadata__: metadata };
  let offset = 0;
  for (const t of tensors) {
    const bytes = t.data.byteLength;
    header[t.name] = { dtype: DTYPE_NAMES[t.dtype], shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  json += " ".repeat((8 - ((json.length + 8) % 8)) % 8);
  const headerBytes = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + headerBytes.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerBytes.length), true);
  out.set(headerBytes, 8);
  let at = 8 + headerBytes.length;
  for (const t of tensors) {
    out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), at);
    at += t.data.byteLength;
  }
  return out;
}
