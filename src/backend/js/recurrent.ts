/** Reference kernels of RecurrentGemma's recurrent block (RECURRENTGEMMA.md §4). */
import type { RecurrenceArgs } from "../kernels.js";
import { geglu } from "./elementwise.js";

/** Kernels.recurrence: Conv1D, the two gate projections, the RG-LRU scan, then gelu_tanh(y) ⊙ h. */
export function recurrence(a: RecurrenceArgs): void {
  const n = a.seqLen * a.width;
  const blockWidth = a.width / a.nBlocks;
  const conv = new Float32Array(n);
  const inputGate = new Float32Array(n);
  const recurrentGate = new Float32Array(n);
  const h = new Float32Array(n);
  conv1d(conv, a.x, a.convWeight, a.convBias, a.history, a.seqLen, a.width, a.convWidth);
  blockDiagonalLinear(inputGate, conv, a.inputGate, a.inputGateBias, a.seqLen, a.nBlocks, blockWidth);
  blockDiagonalLinear(recurrentGate, conv, a.recurrentGate, a.recurrentGateBias, a.seqLen, a.nBlocks, blockWidth);
  rgLruScan(h, conv, inputGate, recurrentGate, a.softplusLambda, a.state, a.seqLen, a.width, a.startPos);
  geglu(a.out, a.y, h, n, "gelu_tanh");
}

export function blockDiagonalLinear(
  out: Float32Array,
  x: Float32Array,
  weight: Float32Array,
  bias: Float32Array,
  seqLen: number,
  nBlocks: number,
  blockWidth: number,
): void {
  const width = nBlocks * blockWidth;
  for (let s = 0; s < seqLen; s++) {
    for (let h = 0; h < nBlocks; h++) {
      const inBase = s * width + h * blockWidth;
      const wBase = h * blockWidth * blockWidth;
      for (let j = 0; j < blockWidth; j++) {
        let acc = bias[h * blockWidth + j]!;
        for (let i = 0; i < blockWidth; i++) acc += x[inBase + i]! * weight[wBase + i * blockWidth + j]!;
        out[inBase + j] = acc;
      }
    }
  }
}

export function conv1d(
  out: Float32Array,
  x: Float32Array,
  weight: Float32Array,
  bias: Float32Array,
  history: Float32Array,
  seqLen: number,
  channels: number,
  width: number,
): void {
  const past = width - 1;
  // Input at time t - d: from this call's x, or from the history of earlier calls.
  const input = (t: number, c: number) => (t >= 0 ? x[t * channels + c]! : history[(past + t) * channels + c]!);
  for (let t = 0; t < seqLen; t++) {
    for (let c = 0; c < channels; c++) {
      let acc = bias[c]!;
      for (let k = 0; k < width; k++) acc += weight[k * channels + c]! * input(t - (width - 1 - k), c);
      out[t * channels + c] = acc;
    }
  }
  // Keep the last width-1 inputs, oldest first.
  const kept = new Float32Array(past * channels);
  for (let r = 0; r < past; r++) {
    const t = seqLen - past + r;
    for (let c = 0; c < channels; c++) kept[r * channels + c] = input(t, c);
  }
  history.set(kept);
}

const sigmoid = (v: number) => 1 / (1 + Math.exp(-v));

export function rgLruScan(
  out: Float32Array,
  x: Float32Array,
  inputGate: Float32Array,
  recurrentGate: Float32Array,
  softplusLambda: Float32Array,
  state: Float32Array,
  seqLen: number,
  width: number,
  startPos: number,
): void {
  for (let t = 0; t < seqLen; t++) {
    const reset = startPos + t === 0;
    const base = t * width;
    for (let c = 0; c < width; c++) {
      const logA = -8 * sigmoid(recurrentGate[base + c]!) * softplusLambda[c]!;
      const a = reset ? 0 : Math.exp(logA);
      const multiplier = reset ? 1 : Math.sqrt(1 - Math.exp(2 * logA));
      // The state is float32, as in the reference.
      state[c] = a * state[c]! + multiplier * sigmoid(inputGate[base + c]!) * x[base + c]!;
      out[base + c] = state[c]!;
    }
  }
}
