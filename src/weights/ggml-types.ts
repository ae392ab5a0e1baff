/**
 * GGML tensor types as numbered in GGUF files (ggml.h), with their block geometry, so a file's
 * tensor sizes can be checked before anything is read.
 */
import { Q4_0, Q8_0, QK } from "./block-layout.js";

export interface GgmlType {
  name: string;
  /** Values per block (1 for plain floats). */
  blockValues: number;
  blockBytes: number;
}

const TYPES: ReadonlyMap<number, GgmlType> = new Map([
  [0, { name: "F32", blockValues: 1, blockBytes: 4 }],
  [1, { name: "F16", blockValues: 1, blockBytes: 2 }],
  [2, { name: "Q4_0", blockValues: QK, blockBytes: Q4_0.blockBytes }],
  [3, { name: "Q4_1", blockValues: 32, blockBytes: 20 }],
  [6, { name: "Q5_0", blockValues: 32, blockBytes: 22 }],
  [7, { name: "Q5_1", blockValues: 32, blockBytes: 24 }],
  [8, { name: "Q8_0", blockValues: QK, blockBytes: Q8_0.blockBytes }],
  [9, { name: "Q8_1", blockValues: 32, blockBytes: 36 }],
  [10, { name: "Q2_K", blockValues: 256, blockBytes: 84 }],
  [11, { name: "Q3_K", blockValues: 256, blockBytes: 110 }],
  [12, { name: "Q4_K", blockValues: 256, blockBytes: 144 }],
  [13, { name: "Q5_K", blockValues: 256, blockBytes: 176 }],
  [14, { name: "Q6_K", blockValues: 256, blockBytes: 210 }],
  [15, { name: "Q8_K", blockValues: 256, blockBytes: 292 }],
  [30, { name: "BF16", blockValues: 1, blockBytes: 2 }],
]);

export const GGML_TYPE_ID = {
  F32: 0,
  F16: 1,
  Q4_0: 2,
  Q8_0: 8,
  Q4_K: 12,
  Q5_K: 13,
  Q6_K: 14,
  BF16: 30,
} as const;

export function ggmlType(id: number): GgmlType | undefined {
  return TYPES.get(id);
}

/** Bytes of `values` elements of a type, or null when they do not split into whole blocks. */
export function ggmlBytes(type: GgmlType, values: number): number | null {
  if (values % type.blockValues !== 0) return null;
  return (values / type.blockValues) * type.blockBytes;
}
