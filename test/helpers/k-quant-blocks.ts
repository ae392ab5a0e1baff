/**
 * Random K-quant super-blocks shaped like real ones: random quants; Q4_K/Q5_K scales of 2-8 with
 * mins that centre each sub-block on zero (min ≈ scale · the quants' mean, dmin = d), as llama.cpp's
 * quantizer makes them for zero-mean weights; Q6_K random int8 scales. Values stay a few hundredths.
 */
import type { Weight } from "../../src/backend/kernels.js";
import { BLOCK_LAYOUTS, type KQuantDtype, QK_K } from "../../src/weights/block-layout.js";
import { Rng } from "../../src/generate/rng.js";
import { f32ToF16 } from "../../src/weights/dtype.js";

/** The 12 bytes packing eight 6-bit scales and mins (the inverse of get_scale_min_k4). */
function packScalesMins(scales: number[], mins: number[]): number[] {
  const bytes = new Array<number>(12).fill(0);
  for (let j = 0; j < 4; j++) {
    bytes[j] = scales[j]! | ((scales[j + 4]! >> 4) << 6);
    bytes[j + 4] = mins[j]! | ((mins[j + 4]! >> 4) << 6);
    bytes[j + 8] = (scales[j + 4]! & 15) | ((mins[j + 4]! & 15) << 4);
  }
  return bytes;
}

/** `values` (a multiple of 256) values of random blocks. */
export function randomKQuantBytes(dtype: KQuantDtype, values: number, seed: number): Uint8Array {
  const rng = new Rng(seed);
  const layout = BLOCK_LAYOUTS[dtype];
  const bytes = new Uint8Array((values / QK_K) * layout.blockBytes);
  for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(rng.next() * 256);
  const d = f32ToF16(dtype === "q6_k" ? 2 ** -12 : 2 ** -10);
  for (let at = 0; at < bytes.length; at += layout.blockBytes) {
    if (dtype === "q6_k") {
      bytes.set([d & 0xff, d >> 8], at + BLOCK_LAYOUTS.q6_k.dOffset);
      continue;
    }
    const meanQuant = dtype === "q4_k" ? 7.5 : 15.5;
    const scales = Array.from({ length: 8 }, () => 2 + Math.floor(rng.next() * (dtype === "q4_k" ? 7 : 3)));
    bytes.set([d & 0xff, d >> 8, d & 0xff, d >> 8], at);
    bytes.set(
      packScalesMins(
        scales,
        scales.map((s) => Math.round(s * meanQuant)),
      ),
      at + 4,
    );
  }
  return bytes;
}

export function randomKQuantWeight(dtype: KQuantDtype, rows: number, cols: number, seed: number): Weight {
  return { dtype, rows, cols, data: randomKQuantBytes(dtype, rows * cols, seed) };
}
