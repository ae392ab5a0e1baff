/**
 * Training throughput (`npm run bench:train`): tokens/s of one full training step (forward,
 * cross-entropy, backward, AdamW) at sequence 128, batch 8, Gemma 2 architecture (alternating
 * sliding window 64 / global, soft-caps, four norms, tied embeddings), for the two configurations
 * of issue 5: A (vocab 256000, d 128, 4 layers, 4 heads / 2 KV of 32, ffn 512) and B (vocab 8192,
 * d 256, 6 layers, 4 heads / 2 KV of 64, ffn 1024). Random token ids; the values do not change
 * the cost. Median of the timed steps after one warm-up step.
 *
 *   npm run bench:train -- [--configs A,B] [--threads 1,2] [--steps 3] [--backend wasm|js]
 */
import { availableParallelism, cpus } from "node:os";
import { parseArgs } from "node:util";
import { parseConfigJson } from "../src/model/gemma/config.js";
import { Rng } from "../src/generate/rng.js";
import { trainingLinear } from "../src/train/fast-linear.js";
import { TrainableGemma } from "../src/train/model.js";
import { AdamW, DEFAULT_ADAMW } from "../src/train/optimizer.js";

const CONFIGS = {
  A: {
    vocab_size: 256000,
    hidden_size: 128,
    num_hidden_layers: 4,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    head_dim: 32,
    intermediate_size: 512,
  },
  B: {
    vocab_size: 8192,
    hidden_size: 256,
    num_hidden_layers: 6,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    head_dim: 64,
    intermediate_size: 1024,
  },
} as const;

const { values } = parseArgs({
  options: {
    configs: { type: "string", default: "A,B" },
    threads: { type: "string", default: String(availableParallelism()) },
    steps: { type: "string", default: "3" },
    backend: { type: "string", default: "wasm" },
  },
});
const SEQ = 128;
const BATCH = 8;
console.log(`training step: seq ${SEQ}, batch ${BATCH}; ${cpus()[0]?.model} × ${cpus().length}, node ${process.version}`);
for (const name of values.configs!.split(",") as (keyof typeof CONFIGS)[]) {
  for (const threads of values.threads!.split(",").map(Number)) {
    const hf = {
      model_type: "gemma2",
      ...CONFIGS[name],
      query_pre_attn_scalar: CONFIGS[name].head_dim,
      sliding_window: 64,
      max_position_embeddings: SEQ,
      attn_logit_softcapping: 50,
      final_logit_softcapping: 30,
    };
    const linear = await trainingLinear(values.backend as "js" | "wasm", threads);
    const model = new TrainableGemma(parseConfigJson(JSON.stringify(hf)), "f32", linear).initRandom(1);
    const optimizer = new AdamW(DEFAULT_ADAMW, model.shapes);
    const rng = new Rng(7);
    const step = () => {
      const started = performance.now();
      model.zeroGrads();
      for (let b = 0; b < BATCH; b++) {
        const ids = Array.from({ length: SEQ + 1 }, () => rng.uint32() % hf.vocab_size);
        model.lossAndBackward(ids.slice(0, SEQ), { nextTokens: ids.slice(1) }, 1 / (BATCH * SEQ));
      }
      optimizer.update(model.params, model.grads, 1e-3, (n) => model.shapes.get(n)!.length === 2);
      return (performance.now() - started) / 1000;
    };
    step();
    const times = Array.from({ length: Number(values.steps) }, step).sort((a, b) => a - b);
    const median = times[Math.floor(times.length / 2)]!;
    console.log(
      `config ${name} (${model.parameterCount().toLocaleString("en")} parameters), ${linear.name}: ${((BATCH * SEQ) / median).toFixed(1)} tokens/s (median step ${median.toFixed(2)} s of ${times.length})`,
    );
  }
}
process.exit(0);
