/**
 * WebAssembly features the engine has. Relaxed SIMD (its int8 dot product) is on by default in
 * Chromium ≥ 114 and Node ≥ 22. Node 20's V8 has it only behind --experimental-wasm-relaxed-simd,
 * and that early version computes two dot products that share an operand wrongly (measured: the
 * kernels' results off by up to 5×), so gemma-ts does not set the flag: Node 20 uses plain SIMD.
 */

/** A module whose one function returns i32x4.relaxed_dot_i8x16_i7x16_add_s of three zero vectors. */
function relaxedSimdProbe(): Uint8Array<ArrayBuffer> {
  const v128Zero = [0xfd, 0x0c, ...new Array<number>(16).fill(0)];
  const body = [0x00, ...v128Zero, ...v128Zero, ...v128Zero, 0xfd, 0x93, 0x02, 0x0b];
  const header = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
  const types = [0x01, 0x05, 0x01, 0x60, 0x00, 0x01, 0x7b]; // one type: () -> v128
  const functions = [0x03, 0x02, 0x01, 0x00];
  const code = [0x0a, body.length + 2, 0x01, body.length, ...body];
  return new Uint8Array([...header, ...types, ...functions, ...code]);
}

/** Whether this engine compiles relaxed SIMD. */
export function relaxedSimdSupported(): boolean {
  try {
    return WebAssembly.validate(relaxedSimdProbe());
  } catch {
    return false;
  }
}

/**
 * A module whose one export returns lane 0 of i32x4.relaxed_dot_i8x16_i7x16_add_s(splat(127),
 * splat(0xff), 0): its second operand out of the i7 range on purpose, so the result says how the
 * engine computes the dot. VNNI (vpdpbusd) takes 0xff as 255 and sums four products in 32 bits:
 * 129540. x86 without VNNI builds the dot from pmaddubsw, whose 16-bit pair sums saturate, and
 * pmaddwd: 65534. Arm's signed dot takes 0xff as -1: -508.
 */
function relaxedDotFormProbe(): Uint8Array<ArrayBuffer> {
  const splat = (byte: number) => [0xfd, 0x0c, ...new Array<number>(16).fill(byte)];
  const body = [0x00, ...splat(127), ...splat(0xff), ...splat(0), 0xfd, 0x93, 0x02, 0xfd, 0x1b, 0x00, 0x0b];
  const header = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
  const types = [0x01, 0x05, 0x01, 0x60, 0x00, 0x01, 0x7f]; // one type: () -> i32
  const functions = [0x03, 0x02, 0x01, 0x00];
  const exports = [0x07, 0x05, 0x01, 0x01, 0x66, 0x00, 0x00]; // "f": function 0
  const code = [0x0a, body.length + 2, 0x01, body.length, ...body];
  return new Uint8Array([...header, ...types, ...functions, ...exports, ...code]);
}

/** The pmaddubsw form's result of relaxedDotFormProbe. */
const SATURATED_PAIRS = 2 * 32767;

let pairDots: boolean | null = null;

/**
 * Whether relaxed SIMD's 32-bit int8 dot is built from 16-bit pair sums here (x86 without VNNI),
 * so that kernels adding the pair sums themselves and widening once run fewer instructions than
 * calling it (assembly/simd.ts usePairDots). Either form gives the same sums for operands in
 * range; this only picks the faster one. Probed once per thread.
 */
export function relaxedDotFromPairs(): boolean {
  if (pairDots === null) {
    try {
      const instance = new WebAssembly.Instance(new WebAssembly.Module(relaxedDotFormProbe()));
      pairDots = (instance.exports.f as () => number)() === SATURATED_PAIRS;
    } catch {
      pairDots = false;
    }
  }
  return pairDots;
}
