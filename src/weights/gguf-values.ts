/**
 * Typed metadata values for the GGUF files we write: each value with the GGUF type it is stored
 * as. Kept apart from the writer so that reading a config (gguf-config.ts) does not load the
 * serializer's package.
 */
import { GGUF_TYPE, type GgufMetadataValue } from "./gguf-header.js";

export interface GgufValue {
  /** A GGUF_TYPE. */
  type: number;
  value: GgufMetadataValue;
  /** An array's element type. */
  subType?: number;
}

/** Constructors for typed metadata values. */
export const gguv = {
  u32: (value: number): GgufValue => ({ type: GGUF_TYPE.UINT32, value }),
  i32: (value: number): GgufValue => ({ type: GGUF_TYPE.INT32, value }),
  f32: (value: number): GgufValue => ({ type: GGUF_TYPE.FLOAT32, value }),
  bool: (value: boolean): GgufValue => ({ type: GGUF_TYPE.BOOL, value }),
  str: (value: string): GgufValue => ({ type: GGUF_TYPE.STRING, value }),
  strings: (value: string[]): GgufValue => ({ type: GGUF_TYPE.ARRAY, subType: GGUF_TYPE.STRING, value }),
  f32s: (value: number[]): GgufValue => ({ type: GGUF_TYPE.ARRAY, subType: GGUF_TYPE.FLOAT32, value }),
  i32s: (value: number[]): GgufValue => ({ type: GGUF_TYPE.ARRAY, subType: GGUF_TYPE.INT32, value }),
  u32s: (value: number[]): GgufValue => ({ type: GGUF_TYPE.ARRAY, subType: GGUF_TYPE.UINT32, value }),
  bools: (value: boolean[]): GgufValue => ({ type: GGUF_TYPE.ARRAY, subType: GGUF_TYPE.BOOL, value }),
};
