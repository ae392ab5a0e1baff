import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { GenerationError, TokenizerError } from "../../src/errors.js";
import { loadModel, type GemmaModel } from "../../src/gemma.js";
import { Generation, type GeneratedToken } from "../../src/generate/generation.js";
import { StopStringFilter } from "../../src/generate/stop-strings.js";
import { FIXTURES, tinyGemma2Json, writeRandomModel } from "../helpers/random-model.js";
import { writeTokenizerModel } from "../helpers/tokenizer.js";

async function collect(generation: Generation): Promise<GeneratedToken[]> {
  const tokens: GeneratedToken[] = [];
  for await (const t of generation) tokens.push(t);
  return tokens;
}

describe("stop strings", () => {
  it("holds back text that may start a stop string and cuts at the stop", () => {
    const filter = new StopStringFilter(["END"]);
    assert.deepEqual(
      filter.push({ id: 1, text: "hello " }).ready.map((t) => t.text),
      ["hello "],
    );
    assert.deepEqual(filter.push({ id: 2, text: "E" }).ready, []);
    assert.deepEqual(
      filter.push({ id: 3, text: "x" }).ready.map((t) => t.text),
      ["E", "x"],
    );
    assert.deepEqual(
      filter.push({ id: 4, text: "aE" }).ready.map((t) => t.text),
      [],
    );
    const end = filter.push({ id: 5, text: "NDing" });
    assert.equal(end.stopped, true);
    assert.deepEqual(end.ready, [{ id: 4, text: "a" }]);
  });

  it("releases held text at the end when no stop string completes", () => {
    const filter = new StopStringFilter(["STOP"]);
    filter.push({ id: 1, text: "ST" });
    assert.deepEqual(filter.flush(), [{ id: 1, text: "ST" }]);
  });
});

describe("generation", () => {
  let model: GemmaModel;
  before(async () => {
    model = await loadModel(await writeTokenizerModel());
  });

  it("hands each step's logits back once the token is sampled", {
    skip: typeof (ArrayBuffer.prototype as { transfer?: unknown }).transfer !== "function" && "no ArrayBuffer.prototype.transfer",
  }, async () => {
    const pass = model.forwardPass;
    const returned: Float32Array[] = [];
    const { forward, forwardAsync } = pass;
    const record = (logits: Float32Array) => {
      returned.push(logits);
      return logits;
    };
    pass.forward = (...args) => record(forward.apply(pass, args));
    if (forwardAsync) pass.forwardAsync = async (...args) => record(await forwardAsync.apply(pass, args));
    try {
      const tokens = await collect(model.generate("The weather today", { temperature: 0, maxTokens: 6 }));
      assert.equal(tokens.length, 6);
    } finally {
      pass.forward = forward;
      if (forwardAsync) pass.forwardAsync = forwardAsync;
    }
    // The prompt's logits and those of every step before the last sampled one are freed.
    assert.equal(returned.length, 6);
    assert.deepEqual(
      returned.map((l) => l.length),
      [...Array(5).fill(0), model.config.vocabSize],
    );
  });

  it("encodes a text prompt with BOS once and streams text that joins to the full output", async () => {
    const generation = model.generate("The weather today", { temperature: 0, maxTokens: 12 });
    assert.equal(generation.promptIds[0], 2);
    assert.equal(generation.promptIds.filter((id) => id === 2).length, 1);
    const tokens = await collect(generation);
    assert.equal(tokens.length, 12);
    assert.equal(generation.finishReason, "length");
    assert.equal(tokens.map((t) => t.text).join(""), generation.text);
    assert.equal(generation.text, model.tokenizer!.decode(tokens.map((t) => t.id)));
  });

  it("is reproducible with a seed and varies across seeds", async () => {
    const run = (seed: number) => model.generate("Once upon a time", { seed, maxTokens: 16, topK: 0, topP: 1 }).complete();
    assert.equal(await run(7), await run(7));
    assert.notEqual(await run(7), await run(8));
  });

  it("stops before a stop string, which is not part of the output", async () => {
    const free = model.generate("Once upon a time", { temperature: 0, maxTokens: 24 });
    const full = await free.complete();
    const stop = full.slice(6, 10);
    assert.ok(stop.trim().length > 0, `need visible text to stop on, got ${JSON.stringify(full)}`);
    const stopped = model.generate("Once upon a time", { temperature: 0, maxTokens: 24, stop: [stop, "\u0007never"] });
    const text = await stopped.complete();
    assert.equal(text, full.slice(0, full.indexOf(stop)));
    assert.equal(stopped.finishReason, "stop");
  });

  it("stops on an end token without emitting it", async () => {
    const greedy = (await collect(model.generate([2, 651, 4320], { temperature: 0, maxTokens: 5 }))).map((t) => t.id);
    const context = { ...model.generationContext(model.createSequence()), stopTokenIds: new Set([greedy[2]!]) };
    const generation = new Generation(context, [2, 651, 4320], { temperature: 0, maxTokens: 5 });
    const ids = (await collect(generation)).map((t) => t.id);
    assert.deepEqual(ids, greedy.slice(0, 2));
    assert.equal(generation.finishReason, "stop");
    assert.equal(generation.completionTokens, 3);
  });

  it("ends early when its AbortSignal fires", async () => {
    const controller = new AbortController();
    const generation = model.generate("Hello", { temperature: 0, maxTokens: 200, signal: controller.signal });
    let count = 0;
    for await (const _ of generation) if (++count === 3) controller.abort();
    assert.equal(count, 3);
    assert.equal(generation.finishReason, "abort");
  });

  it("rejects bad requests before starting", async () => {
    assert.throws(
      () => model.generate("hi", { maxTokens: 0 }),
      (e: unknown) => e instanceof GenerationError && /maxTokens must be a positive integer/.test(e.message),
    );
    assert.throws(() => model.generate("hi", { topP: 2 }), /invalid topP: 2/);
    assert.throws(() => model.generate("hi", { stop: [""] }), /stop strings must be non-empty/);
    assert.throws(() => model.generate(new Array(600).fill(5)), /the prompt has 600 tokens; the model's context holds 512/);
    assert.throws(() => model.generate([]), /the prompt has no tokens/);
  });

  it("generates from ids on a checkpoint without a tokenizer, and refuses text there", async () => {
    const plain = await loadModel(`${FIXTURES}tiny_a`);
    assert.equal(plain.tokenizer, null);
    const tokens = await collect(plain.generate([2, 194, 93], { temperature: 0, maxTokens: 4 }));
    assert.equal(tokens.length, 4);
    assert.throws(
      () => plain.generate("hello"),
      (e: unknown) => e instanceof TokenizerError && /no tokenizer\.json; pass token ids/.test(e.message),
    );
  });
});

describe("chat sessions", () => {
  it("reuses the KV cache between turns and answers exactly as a fresh run over the whole conversation", async () => {
    const model = await loadModel(await writeTokenizerModel());
    const chat = model.chat({ system: "Be brief." });
    const first = chat.send("Hi there", { temperature: 0, maxTokens: 8 });
    await first.complete();
    assert.equal(first.reusedPromptTokens, 0);
    const second = chat.send("Tell me more", { temperature: 0, maxTokens: 8 });
    const reply = await second.complete();
    assert.ok(second.reusedPromptTokens > first.promptTokens, `reused ${second.reusedPromptTokens} of ${second.promptTokens}`);
    assert.deepEqual(
      chat.messages.map((m) => m.role),
      ["system", "user", "assistant", "user", "assistant"],
    );
    const fresh = model.generate(chat.messages.slice(0, 4), { temperature: 0, maxTokens: 8 });
    assert.deepEqual(fresh.promptIds, second.promptIds);
    assert.equal(await fresh.complete(), reply);
  });

  it("leaves the history unchanged when a turn is aborted", async () => {
    const model = await loadModel(await writeTokenizerModel());
    const chat = model.chat();
    const controller = new AbortController();
    controller.abort();
    await chat.send("Hello", { signal: controller.signal }).complete();
    assert.equal(chat.messages.length, 0);
  });
});

describe("non-finite logits", () => {
  it("a NaN in the weights is an error naming the likely cause, never token 0", async () => {
    const dir = writeRandomModel(tinyGemma2Json(), 3, (ts) =>
      ts.map((t) => (t.name === "model.norm.weight" ? { ...t, data: new Float32Array(t.data.length).fill(Number.NaN) } : t)),
    );
    for (const kernels of ["js", "wasm"] as const) {
      const model = await loadModel(dir, { kernels });
      await assert.rejects(
        model.generate([2, 5, 7], { maxTokens: 2, temperature: 0 }).complete(),
        /non-finite logit \(NaN\).*corrupt or wrongly converted checkpoint/,
      );
      await assert.rejects(model.logits([2, 5]), /non-finite logit/);
    }
  });
});
