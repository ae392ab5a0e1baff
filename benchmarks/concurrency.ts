/**
 * `npm run bench:concurrency`: `gemma-ts serve` with 1, 4 and 8 concurrent clients on the same
 * synthetic GGUF (a published shape, the real vocabulary): aggregate generated tokens per second
 * and each client's time to first token. Every client sends one streamed chat request of
 * `--tokens` greedy tokens at once; the server runs `--parallel` slots (default 8).
 *
 *   npm run bench:concurrency -- [--shape 2b] [--weights q4_0] [--tokens 32] [--clients 1,4,8] [--parallel 8]
 */
import { parseArgs } from "node:util";
import { loadModel } from "../src/gemma.js";
import { startServer } from "../src/server/serve.js";
import { gemmaShape, syntheticGguf } from "./synthetic-gguf.js";

const { values } = parseArgs({
  options: {
    shape: { type: "string", default: "2b" },
    weights: { type: "string", default: "q4_0" },
    tokens: { type: "string", default: "32" },
    clients: { type: "string", default: "1,4,8" },
    parallel: { type: "string", default: "8" },
  },
});
const { shape, config } = gemmaShape(values.shape);
const tokens = Number(values.tokens);
const model = await loadModel(await syntheticGguf(shape, config, values.weights));
const server = await startServer(model, { modelName: "bench", port: 0, parallel: Number(values.parallel), log: () => {} });

/** One streamed request: seconds to the first token and tokens received. */
async function client(index: number): Promise<{ ttft: number; tokens: number }> {
  const started = performance.now();
  const response = await fetch(`${server.url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      messages: [{ role: "user", content: `Client ${index}: write about the sea.` }],
      max_tokens: tokens,
      temperature: 0,
      stream: true,
      stream_options: { include_usage: true },
    }),
  });
  const reader = response.body!.getReader();
  const decoder = new TextDecoder();
  let ttft = 0;
  let text = "";
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    text += decoder.decode(value);
    if (ttft === 0 && /"content":"[^"]/.test(text)) ttft = (performance.now() - started) / 1000;
  }
  const usage = /"completion_tokens":(\d+)/.exec(text);
  return { ttft, tokens: usage ? Number(usage[1]) : 0 };
}

await client(0); // warm up
console.log(`${shape} ${values.weights} (synthetic weights), ${tokens} greedy tokens per client, --parallel ${values.parallel}`);
console.log("| clients | aggregate tokens/s | time to first token, median s | slowest s |");
console.log("|---|---|---|---|");
for (const n of values.clients.split(",").map(Number)) {
  const started = performance.now();
  const results = await Promise.all(Array.from({ length: n }, (_, i) => client(i + 1)));
  const seconds = (performance.now() - started) / 1000;
  const ttfts = results.map((r) => r.ttft).sort((a, b) => a - b);
  const total = results.reduce((sum, r) => sum + r.tokens, 0);
  console.log(`| ${n} | ${(total / seconds).toFixed(2)} | ${ttfts[Math.floor(n / 2)]!.toFixed(2)} | ${ttfts[n - 1]!.toFixed(2)} |`);
}
await server.close(0);
process.exit(0);
