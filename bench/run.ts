/**
 * `npm run bench`: prefill and decode speed of a published Gemma shape on synthetic bf16 weights
 * (no checkpoint needed). Runs the model at two reduced depths and extrapolates to the full depth:
 * time = fixed (embedding + tied output head) + layers × per-layer.
 *
 *   npm run bench -- --shape gemma2-2b --depths 1,2 --prompt 16 --decode 3
 */
import { cpus } from "node:os";
import { parseArgs } from "node:util";
import { jsKernels } from "../src/backend/js/index.js";
import type { Weight } from "../src/backend/kernels.js";
import { PRESETS, type GemmaConfig, type PresetName } from "../src/config.js";
import { Rng } from "../src/generate/rng.js";
import { GemmaForward } from "../src/model/forward.js";
import { KvCache } from "../src/model/kv-cache.js";
import type { GemmaWeights } from "../src/model/weights.js";

const { values } = parseArgs({
  options: {
    shape: { type: "string", default: "gemma2-2b" },
    depths: { type: "string", default: "1,2" },
    prompt: { type: "string", default: "16" },
    decode: { type: "string", default: "3" },
  },
});
const shape = values.shape as PresetName;
if (!(shape in PRESETS)) throw new Error(`unknown --shape ${shape}; one of ${Object.keys(PRESETS).join(", ")}`);
const depths = values.depths.split(",").map(Number) as [number, number];
const promptLength = Number(values.prompt);
const decodeSteps = Number(values.decode);

const rng = new Rng(1);

/** Small random bf16 values (|x| in [2^-8, 2^-2]), generated fast: bits, not gaussians. */
function bf16Matrix(rows: number, cols: number): Weight {
  const data = new Uint16Array(rows * cols);
  const bits = (half: number) => (half & 0x8000) | ((119 + ((half >>> 7) % 7)) << 7) | (half & 0x7f);
  for (let i = 0; i + 1 < data.length; i += 2) {
    const r = rng.uint32();
    data[i] = bits(r & 0xffff);
    data[i + 1] = bits(r >>> 16);
  }
  return { dtype: "bf16", rows, cols, data };
}

function gains(n: number): Float32Array {
  return new Float32Array(n).fill(1);
}

function syntheticWeights(c: GemmaConfig, layers: number, embedding: Weight): GemmaWeights {
  return {
    embedding,
    finalNorm: gains(c.dModel),
    layers: Array.from({ length: layers }, () => ({
      inputNorm: gains(c.dModel),
      postAttentionNorm: c.sandwichNorms ? gains(c.dModel) : null,
      preFeedforwardNorm: gains(c.dModel),
      postFeedforwardNorm: c.sandwichNorms ? gains(c.dModel) : null,
      q: bf16Matrix(c.nHeads * c.headDim, c.dModel),
      k: bf16Matrix(c.nKvHeads * c.headDim, c.dModel),
      v: bf16Matrix(c.nKvHeads * c.headDim, c.dModel),
      o: bf16Matrix(c.dModel, c.nHeads * c.headDim),
      gate: bf16Matrix(c.ffnDim, c.dModel),
      up: bf16Matrix(c.ffnDim, c.dModel),
      down: bf16Matrix(c.dModel, c.ffnDim),
    })),
  };
}

function measure(config: GemmaConfig, embedding: Weight, layers: number): { prefill: number; decode: number } {
  const reduced: GemmaConfig = { ...config, nLayers: layers, layerTypes: config.layerTypes.slice(0, layers) };
  const model = new GemmaForward(reduced, syntheticWeights(reduced, layers, embedding), jsKernels);
  const cache = new KvCache(reduced);
  const prompt = Array.from({ length: promptLength }, (_, i) => (i === 0 ? 2 : 1000 + i));
  let start = performance.now();
  model.forward(prompt, cache, "last");
  const prefill = (performance.now() - start) / 1000;
  start = performance.now();
  for (let i = 0; i < decodeSteps; i++) model.forward([3000 + i], cache, "last");
  const decode = (performance.now() - start) / 1000 / decodeSteps;
  return { prefill, decode };
}

const config = PRESETS[shape];
const embedding = bf16Matrix(config.vocabSize, config.dModel);
const [a, b] = depths;
const small = measure(config, embedding, a);
const large = measure(config, embedding, b);
const extrapolate = (x: number, y: number) => {
  const perLayer = (y - x) / (b - a);
  return x - a * perLayer + config.nLayers * perLayer;
};
const prefillSeconds = extrapolate(small.prefill, large.prefill);
const decodeSeconds = extrapolate(small.decode, large.decode);

console.log(`gemma-ts bench  shape=${shape} (${config.nLayers} layers, bf16 weights)  backend=${jsKernels.name}  node=${process.version}`);
console.log(`cpu: ${cpus()[0]?.model ?? "unknown"} × ${cpus().length}`);
console.log(`measured at depths ${a} and ${b}, extrapolated to ${config.nLayers}:`);
console.log(`  prefill ${promptLength} tokens: ${prefillSeconds.toFixed(2)} s  (${(promptLength / prefillSeconds).toFixed(2)} tokens/s)`);
console.log(`  decode: ${decodeSeconds.toFixed(2)} s/token  (${(1 / decodeSeconds).toFixed(3)} tokens/s)`);
