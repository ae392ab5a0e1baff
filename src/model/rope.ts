/** Rotary frequencies, built in float32 as the references do: inv_freq[j] = theta^(-2j/headDim) (GEMMA2.md §2.2.3). */
export function ropeInverseFrequencies(headDim: number, theta: number): Float32Array {
  const half = headDim / 2;
  const inv = new Float32Array(half);
  for (let j = 0; j < half; j++) inv[j] = 1 / Math.fround(theta ** Math.fround((2 * j) / headDim));
  return inv;
}
