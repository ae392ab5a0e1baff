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
