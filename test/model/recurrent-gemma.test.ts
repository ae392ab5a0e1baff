import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { conv1d, rgLruScan } from "../../src/backend/js/recurrent.js";
import { parseModelConfigJson } from "../../src/model/families.js";
import { ConfigError, GenerationError } from "../../src/errors.js";
import { loadModel } from "../../src/gemma.js";
import { recurrentParameterCount, type RecurrentGemmaConfig } from "../../src/model/recurrent-gemma/config.js";
import type { RecurrentState } from "../../src/model/recurrent-gemma/forward.js";
import { openCheckpointFolder } from "../../src/weights/checkpoint-folder.js";
import { FIXTURES, tinyRecurrentGemmaJson, writeRandomModel } from "../helpers/random-model.js";
import { addGemmaTokenizer } from "../helpers/tokenizer.js";

interface RgFixture {
  input_ids: number[];
  logits: number[][];
  greedy_tokens: number[];
  step_logits: number[][];
  full_sequence: number[];
  full_sequence_logits: number[][];
}

const fixture = JSON.parse(readFileSync(`${FIXTURES}rg_tiny/fixture.json`, "utf8")) as RgFixture;

function maxAbsDiff(actual: Float32Array, expected: number[][] | Float32Array): number {
  const flat = expected instanceof Float32Array ? expected : expected.flat();
  let max = 0;
  for (let i = 0; i < flat.length; i++) max = Math.max(max, Math.abs(actual[i]! - flat[i]!));
  return max;
}

describe("RecurrentGemma config", () => {
  it("reads the Hugging Face recurrent_gemma fields", () => {
    const c = parseModelConfigJson(readFileSync(`${FIXTURES}rg_tiny/config.json`, "utf8")) as RecurrentGemmaConfig;
    assert.equal(c.family, "recurrent_gemma");
    assert.deepEqual(c.blockTypes, ["recurrent", "recurrent", "attention", "recurrent", "recurrent", "attention"]);
    assert.equal(c.ffnDim, 192); // intermediate_size 384 / 2
    assert.equal(c.rotaryDim, 8);
    assert.equal(c.attentionWindow, 8);
    assert.equal(c.finalSoftcap, 30);
  });

  it("rejects inconsistent configs, naming the field", () => {
    const bad = (overrides: Record<string, unknown>, pattern: RegExp) =>
      assert.throws(
        () => parseModelConfigJson(JSON.stringify(tinyRecurrentGemmaJson(overrides))),
        (e: unknown) => e instanceof ConfigError && pattern.test(e.message),
      );
    bad({ block_types: ["recurrent", "mamba"] }, /block_types must be a non-empty list/);
    bad({ lru_width: 30 }, /lru_width \(30\) must be a multiple of num_attention_heads \(4\)/);
    bad({ intermediate_size: 127 }, /intermediate_size must be even/);
    bad({ attention_window_size: undefined }, /attention_window_size must be a positive integer up to 16,777,216; it is missing/);
    bad({ num_hidden_layers: 1_000_000 }, /num_hidden_layers must be a positive integer up to 1,024/);
    bad({ bos_token_id: "2" }, /bos_token_id must be a token id/);
    bad({ pad_token_id: -1 }, /pad_token_id must be a token id/);
  });

  it("rejects a checkpoint missing a recurrent tensor, naming it and its shape", async () => {
    const dir = writeRandomModel(tinyRecurrentGemmaJson(), 2, (ts) =>
      ts.filter((t) => t.name !== "model.layers.1.temporal_block.rg_lru.recurrent_gate_weight"),
    );
    await assert.rejects(
      loadModel(dir),
      /missing tensor model\.layers\.1\.temporal_block\.rg_lru\.recurrent_gate_weight \(expected shape \[4, 8, 8\]\)/,
    );
    const wrongConv = writeRandomModel(tinyRecurrentGemmaJson(), 2, (ts) =>
      ts.map((t) => (t.name === "model.layers.0.temporal_block.conv_1d.weight" ? { ...t, shape: [32, 4, 1] } : t)),
    );
    await assert.rejects(loadModel(wrongConv), /conv_1d\.weight has shape \[32, 4, 1\], expected \[32, 1, 4\]/);
  });

  it("counts parameters exactly", async () => {
    const ckpt = await openCheckpointFolder(`${FIXTURES}rg_tiny`);
    const stored = ckpt.tensorNames().reduce((s, n) => s + ckpt.tensor(n)!.entry.shape.reduce((a, b) => a * b, 1), 0);
    await ckpt.close();
    const c = parseModelConfigJson(readFileSync(`${FIXTURES}rg_tiny/config.json`, "utf8")) as RecurrentGemmaConfig;
    assert.equal(recurrentParameterCount(c), stored);
  });
});

describe("RecurrentGemma forward against the reference (rg_tiny)", () => {
  for (const backend of ["js", "wasm"] as const) {
    it(`prompt logits within 1e-3 of Google's reference (${backend} backend)`, async () => {
      const model = await loadModel(`${FIXTURES}rg_tiny`, { kernels: backend });
      const diff = maxAbsDiff(await model.logits(fixture.input_ids), fixture.logits);
      assert.ok(diff <= 1e-3, `max |Δlogit| = ${diff}`);
    });
  }

  it("reproduces the 16 greedy tokens through the decode state, step logits within 1e-3", async () => {
    const model = await loadModel(`${FIXTURES}rg_tiny`);
    const sequence = model.createSequence();
    let logits = sequence.prefill(fixture.input_ids);
    const tokens: number[] = [];
    let worst = 0;
    for (let step = 0; step < 16; step++) {
      worst = Math.max(worst, maxAbsDiff(logits, [fixture.step_logits[step]!]));
      let best = 0;
      for (let i = 1; i < logits.length; i++) if (logits[i]! > logits[best]!) best = i;
      tokens.push(best);
      logits = sequence.feed([best]);
    }
    assert.deepEqual(tokens, fixture.greedy_tokens);
    assert.ok(worst <= 1e-3, `max step |Δlogit| = ${worst}`);
    const generated: number[] = [];
    for await (const t of model.generate(fixture.input_ids, { temperature: 0, maxTokens: 16 })) generated.push(t.id);
    assert.deepEqual(generated, fixture.greedy_tokens);
  });

  it("decode state agrees with one full pass over prompt + generated tokens", async () => {
    const model = await loadModel(`${FIXTURES}rg_tiny`);
    const full = await model.logits(fixture.full_sequence);
    assert.ok(maxAbsDiff(full, fixture.full_sequence_logits) <= 1e-3);
    const sequence = model.createSequence();
    const vocab = model.config.vocabSize;
    let worst = 0;
    // Prefill in uneven chunks (across the 8-key ring), then one token at a time.
    const chunks = [fixture.full_sequence.slice(0, 5), fixture.full_sequence.slice(5, 19), fixture.full_sequence.slice(19, 24)];
    let at = 0;
    for (const chunk of chunks) {
      const last = sequence.feed(chunk);
      at += chunk.length;
      worst = Math.max(worst, maxAbsDiff(last, full.subarray((at - 1) * vocab, at * vocab)));
    }
    for (; at < fixture.full_sequence.length; at++) {
      const step = sequence.feed([fixture.full_sequence[at]!]);
      worst = Math.max(worst, maxAbsDiff(step, full.subarray(at * vocab, (at + 1) * vocab)));
    }
    assert.ok(worst <= 1e-4, `decode vs full pass: ${worst}`);
  });

  it("keeps a constant-size state and refuses to rewind a recurrence", async () => {
    const model = await loadModel(`${FIXTURES}rg_tiny`);
    const sequence = model.createSequence();
    sequence.feed(fixture.input_ids);
    const state = sequence.cache as RecurrentState;
    const bytes = state.bytes();
    for (let i = 0; i < 100; i++) sequence.feed([(i * 7) % 512]);
    assert.equal(state.bytes(), bytes);
    assert.equal(state.canRewindTo(state.length - 1), false);
    assert.throws(
      () => state.rewindTo(10),
      (e: unknown) => e instanceof GenerationError && /a recurrence keeps no history/.test(e.message),
    );
    state.rewindTo(0);
    assert.equal(state.length, 0);
    // After starting over the state gives the same logits as a fresh one.
    assert.ok(maxAbsDiff(sequence.feed(fixture.input_ids), (await model.logits(fixture.input_ids)).subarray(23 * 512)) <= 1e-5);
  });
});

describe("RecurrentGemma kernels", () => {
  it("conv1d keeps the last width-1 inputs across calls", () => {
    const channels = 2;
    const width = 3;
    const weight = new Float32Array([1, 10, 2, 20, 3, 30]); // [tap, channel]
    const bias = new Float32Array([0.5, 0]);
    const xs = [1, 2, 3, 4, 5].map((v) => [v, -v]);
    const whole = new Float32Array(10);
    conv1d(whole, new Float32Array(xs.flat()), weight, bias, new Float32Array(4), 5, channels, width);
    const history = new Float32Array(4);
    const pieces: number[] = [];
    for (const x of xs) {
      const out = new Float32Array(2);
      conv1d(out, new Float32Array(x), weight, bias, history, 1, channels, width);
      pieces.push(...out);
    }
    assert.deepEqual(pieces, [...whole]);
    // t = 2, channel 0: 0.5 + 1·1 + 2·2 + 3·3
    assert.equal(whole[4], 14.5);
  });

  it("rg-lru resets at position 0 and decays otherwise", () => {
    const state = new Float32Array([5]);
    const out = new Float32Array(2);
    // Gates at +∞ make σ = 1: a = exp(-8·softplus), multiplier sqrt(1 - a²).
    rgLruScan(
      out,
      new Float32Array([2, 3]),
      new Float32Array([50, 50]),
      new Float32Array([50, 50]),
      new Float32Array([0.1]),
      state,
      2,
      1,
      0,
    );
    const a = Math.exp(-0.8);
    assert.equal(out[0], 2); // reset: a = 0, multiplier 1, the old state 5 is dropped
    assert.ok(Math.abs(out[1]! - (a * 2 + Math.sqrt(1 - a * a) * 3)) < 1e-6);
  });
});

/** A tiny RecurrentGemma with random weights (seed) and the real Gemma tokenizer, loaded. */
async function tinyRecurrentChatModel(seed: number) {
  const config = { vocab_size: 256000, hidden_size: 8, lru_width: 8, head_dim: 4, num_attention_heads: 2, intermediate_size: 32 };
  const dir = writeRandomModel(tinyRecurrentGemmaJson(config), seed);
  addGemmaTokenizer(dir);
  return loadModel(dir);
}

describe("RecurrentGemma through the generation API", () => {
  it("runs under the OpenAI server unchanged", async () => {
    const { startServer } = await import("../../src/server/serve.js");
    const model = await tinyRecurrentChatModel(5);
    const server = await startServer(model, { modelName: "rg", port: 0 });
    try {
      const body = JSON.stringify({ messages: [{ role: "user", content: "Hi" }], max_tokens: 3, temperature: 0 });
      const reply = await (
        await fetch(`${server.url}/v1/chat/completions`, { method: "POST", headers: { "content-type": "application/json" }, body })
      ).json();
      assert.equal(reply.usage.completion_tokens, 3);
      assert.equal(
        reply.choices[0].message.content,
        await model.generate([{ role: "user", content: "Hi" }], { temperature: 0, maxTokens: 3 }).complete(),
      );
    } finally {
      await server.close(0);
    }
  });

  it("chats with cache reuse and answers like a fresh run", async () => {
    const model = await tinyRecurrentChatModel(4);
    const chat = model.chat();
    await chat.send("Hello", { temperature: 0, maxTokens: 5 }).complete();
    const second = chat.send("And then?", { temperature: 0, maxTokens: 5 });
    const reply = await second.complete();
    assert.ok(second.reusedPromptTokens > 0);
    const fresh = await model.generate(chat.messages.slice(0, 3), { temperature: 0, maxTokens: 5 }).complete();
    assert.equal(reply, fresh);
  });
});
