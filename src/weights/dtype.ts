/**
 * Storage dtypes of checkpoint tensors and their widening to float32 for compute.
 * Weights stay in their stored width in memory (GEMMA2.md: a 5 GB bf16 checkpoint must not become
 * 10 GB of f32); kernels widen one row at a time.
 */
export type WeightDtype = "f32" | "f16" | "bf16";

/**
 * How a matrix is held: a stored float width, llama.cpp's Q8_0 / Q4_0 blocks (q8_0.ts, q4_0.ts), or
 * its K-quant super-blocks as a GGUF file stores them (k-quants.ts).
 */
export type MatrixDtype = WeightDtype | "q8_0" | "q4_0" | "q4_k" | "q5_k" | "q6_k";

/** Byte size of every safetensors dtype, so headers can be validated even for tensors we skip. */
export const SAFETENSORS_DTYPE_BYTES: Readonly<Record<string, number>> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U64: 8,
  U32: 4,
  U16: 2,
  U8: 1,
  BOOL: 1,
  F8_E4M3: 1,
  F8_E5M2: 1,
};

export function weightDtypeOf(safetensorsDtype: string): WeightDtype | null {
  switch (safetensorsDtype) {
    case "F32":
      return "f32";
    case "F16":
      return "f16";
    case "BF16":
      return "bf16";
    default:
      return null;
  }
}

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/** bfloat16 is the top half of a float32. */
export function bf16ToF32(bits: number): number {
  u32Scratch[0] = bits << 16;
  return f32Scratch[0]!;
}

/** Round-to-nearest-even float32 → bfloat16 bits (how PyTorch casts). */
export function f32ToBf16(value: number): number {
  f32Scratch[0] = value;
  const bits = u32Scratch[0]!;
  if ((bits & 0x7f800000) === 0x7f800000 && (bits & 0x7fffff) !== 0) return 0x7fc0; // NaN
  return ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16) & 0xffff;
}

/** IEEE half → number, subnormals and infinities included. */
export function f16ToF32(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >>> 10) & 0x1f;
  const mantissa = bits & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  if (exponent === 31) return mantissa === 0 ? sign * Infinity : NaN;
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}

/** number → IEEE half bits, round to nearest even. */
export function f32ToF16(value: number): number {
  f32Scratch[0] = value;
  const x = u32Scratch[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    let rounded = mant >>> shift;
    const rest = mant & ((1 << shift) - 1);
    if (rest > half || (rest === half && rounded & 1)) rounded++;
    return sign | rounded;
  }
  let rounded = mant >>> 13;
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && rounded & 1)) {
    rounded++;
    if (rounded === 0x400) {
      rounded = 0;
      e++;
      if (e >= 31) return sign | 0x7c00;
    }
  }
  return sign | (e << 10) | rounded;
}

/** Table of all 65536 half values, built once: widening f16 rows is then a lookup. */
let f16Table: Float32Array | null = null;
export function f16LookupTable(): Float32Array {
  if (!f16Table) {
    f16Table = new Float32Array(65536);
    for (let i = 0; i < 65536; i++) f16Table[i] = f16ToF32(i);
  }
  return f16Table;
}

/** Widens `count` values of a stored tensor starting at element `offset` into `out`. */
export function widenInto(out: Float32Array, data: Float32Array | Uint16Array, dtype: WeightDtype, offset: number, count: number): void {
  if (dtype === "f32") {
    out.set((data as Float32Array).subarray(offset, offset + count));
  } else if (dtype === "bf16") {
    const outBits = new Uint32Array(out.buffer, out.byteOffset, count);
    for (let i = 0; i < count; i++) outBits[i] = data[offset + i]! << 16;
  } else {
    const table = f16LookupTable();
    for (let i = 0; i < count; i++) out[i] = table[data[offset + i]!]!;
  }
}
