/**
 * `npm run bench:prefix`: time to first token of a follow-up chat turn on `gemma-ts serve`, with the
 * conversation's prefix reused from the slot's KV cache versus recomputed on a fresh server.
 * Synthetic model: Gemma 2 layout, real tokenizer, d_model 512, 6 layers, bf16-sized compute.
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { configFromHf } from "../src/model/gemma/config.js";
import { loadModel } from "../src/gemma.js";
import { startServer } from "../src/server/serve.js";
import { encodeSafetensors } from "../src/weights/safetensors-writer.js";
import { expectedTensors } from "../src/model/gemma/weights.js";
import { Rng } from "../src/generate/rng.js";
import { addGemmaTokenizer } from "../test/helpers/tokenizer.js";

const hf = {
  model_type: "gemma2",
  hidden_size: 512,
  num_hidden_layers: 6,
  num_attention_heads: 8,
  num_key_value_heads: 4,
  head_dim: 64,
  intermediate_size: 2048,
  vocab_size: 256000,
  sliding_window: 4096,
  query_pre_attn_scalar: 64,
  max_position_embeddings: 8192,
};
const dir = mkdtempSync(join(tmpdir(), "gemma-ts-bench-"));
const rng = new Rng(3);
const tensors = [...expectedTensors(configFromHf(hf))].map(([name, shape]) => {
  const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < data.length; i++) data[i] = (rng.next() - 0.5) * 0.1;
  return { name, dtype: "f32" as const, shape, data };
});
writeFileSync(join(dir, "config.json"), JSON.stringify(hf));
writeFileSync(join(dir, "model.safetensors"), encodeSafetensors(tensors));
addGemmaTokenizer(dir);
const model = await loadModel(dir);

const history = [
  { role: "user", content: `Here is a long document to discuss. ${"The quick brown fox jumps over the lazy dog. ".repeat(60)}` },
  { role: "assistant", content: "I have read it. What would you like to know?" },
];
const followUp = [...history, { role: "user", content: "Summarise it in one line." }];

async function ttft(url: string, messages: object[]): Promise<number> {
  const started = performance.now();
  const response = await fetch(`${url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ messages, max_tokens: 1, temperature: 0, stream: true }),
  });
  const reader = response.body!.getReader();
  const decoder = new TextDecoder();
  let seen = "";
  // The first chunk is the role; the second carries the first token.
  while ((seen.match(/data: /g) ?? []).length < 2) seen += decoder.decode((await reader.read()).value);
  const elapsed = performance.now() - started;
  while (!(await reader.read()).done);
  return elapsed;
}

const warm = await startServer(model, { modelName: "bench", port: 0 });
await ttft(warm.url, history.slice(0, 1)); // the first turn fills the slot's cache
const reused = await ttft(warm.url, followUp);
await warm.close(0);
const cold = await startServer(model, { modelName: "bench", port: 0 });
const recomputed = await ttft(cold.url, followUp);
await cold.close(0);

const promptTokens = model.encode(followUp as never).length;
console.log(
  `gemma-ts prefix-reuse bench  d_model 512, 6 layers, vocab 256000  cpu: ${cpus()[0]?.model ?? "?"} × ${cpus().length}  node ${process.version}`,
);
console.log(
  `follow-up turn of ${promptTokens} prompt tokens: time to first token ${recomputed.toFixed(0)} ms recomputed, ${reused.toFixed(0)} ms with the prefix reused (${(recomputed / reused).toFixed(1)}x faster)`,
);
