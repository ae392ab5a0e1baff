import { readFileSync } from "node:fs";
import type { NamedTensor } from "../../src/weights/safetensors-writer.js";

/** Every tensor of an all-F32 safetensors file (the fixtures), read synchronously for building variants. */
export function readSafetensorsTensors(path: string): NamedTensor[] {
  const bytes = readFileSync(path);
  const headerLength = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + headerLength).toString("utf8")) as Record<
    string,
    { dtype: string; shape: number[]; data_offsets: [number, number] }
  >;
  const base = 8 + headerLength;
  return Object.entries(header)
    .filter(([name]) => name !== "__metadata__")
    .map(([name, t]) => {
      if (t.dtype !== "F32") throw new Error(`${path}: ${name} is ${t.dtype}, expected F32`);
      const data = new Float32Array(
        bytes.buffer.slice(bytes.byteOffset + base + t.data_offsets[0], bytes.byteOffset + base + t.data_offsets[1]),
      );
      return { name, dtype: "f32" as const, shape: t.shape, data };
    });
}
