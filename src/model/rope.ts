import type { RopeSetting } from "./gemma/config-common.js";

/** Rotary frequencies, built in float32 as the references do: inv_freq[j] = theta^(-2j/headDim) (GEMMA2.md §2.2.3). */
export function ropeInverseFrequencies(headDim: number, theta: number): Float32Array {
  const half = headDim / 2;
  const inv = new Float32Array(half);
  for (let j = 0; j < half; j++) inv[j] = 1 / Math.fround(theta ** Math.fround((2 * j) / headDim));
  return inv;
}

/**
 * The frequencies of one layer kind (docs/spec/GEMMA3-4.md §3): linear scaling divides them by its
 * factor; proportional RoPE keeps the first partialRotary·headDim/2 of them and zeroes the rest
 * (those pairs pass through unrotated), every exponent still over the full head_dim.
 */
export function layerRopeFrequencies(setting: RopeSetting, headDim: number): Float32Array {
  const inv = ropeInverseFrequencies(headDim, setting.theta);
  if (setting.type === "proportional") inv.fill(0, Math.floor((setting.partialRotary * headDim) / 2));
  if (setting.factor !== 1) for (let j = 0; j < inv.length; j++) inv[j] = inv[j]! / setting.factor;
  return inv;
}
