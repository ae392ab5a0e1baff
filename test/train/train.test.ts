import assert from "node:assert/strict";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { parseConfigJson } from "../../src/config.js";
import { loadModel } from "../../src/gemma.js";
import { loadTokenizer } from "../../src/tokenizer/load.js";
import { loadTrainable, loadTrainerState, saveTrainedModel } from "../../src/train/checkpoint-io.js";
import { loadTextDataset } from "../../src/train/data.js";
import { TrainableGemma } from "../../src/train/model.js";
import { Trainer, type TrainSettings } from "../../src/train/trainer.js";
import { FIXTURES, tinyGemma2Json } from "../helpers/random-model.js";
import { writeCharTokenizer } from "../helpers/tokenizer.js";

const TEXT = join(FIXTURES, "text/genesis.txt");

function tinyStudent(vocab: number, overrides: Record<string, unknown> = {}) {
  return parseConfigJson(
    JSON.stringify(tinyGemma2Json({ vocab_size: vocab, hidden_size: 32, intermediate_size: 64, num_attention_heads: 2, num_key_value_heads: 1, head_dim: 16, query_pre_attn_scalar: 16, num_hidden_layers: 2, sliding_window: 8, max_position_embeddings: 64, ...overrides })),
  );
}

async function charSetup() {
  const dir = mkdtempSync(join(tmpdir(), "gemma-ts-train-"));
  const vocab = writeCharTokenizer(dir, readFileSync(TEXT, "utf8"));
  const tokenizer = await loadTokenizer(dir);
  return { dir, vocab, tokenizer };
}

const settings = (overrides: Partial<TrainSettings> = {}): TrainSettings => ({ steps: 200, batch: 4, seqLen: 32, lr: 3e-3, warmup: 10, seed: 1, alpha: 0, evalEvery: 50, evalSequences: 0, ...overrides });

describe("training", () => {
  it("the training forward pass gives the inference logits on the reference fixtures", async () => {
    for (const name of ["tiny_a", "tiny_b_27blike"]) {
      const fixture = JSON.parse(readFileSync(join(FIXTURES, name, "fixture.json"), "utf8")) as { input_ids: number[]; logits: number[][] };
      const trainable = await loadTrainable(join(FIXTURES, name));
      const logits = trainable.logits(fixture.input_ids);
      const expected = fixture.logits.flat();
      let worst = 0;
      for (let i = 0; i < expected.length; i++) worst = Math.max(worst, Math.abs(logits[i]! - expected[i]!));
      assert.ok(worst <= 1e-2, `${name}: max |Δlogit| ${worst}`);
    }
  });

  it("a tiny Gemma 2 learns a small text: the loss falls well below its start", async () => {
    const { vocab, tokenizer } = await charSetup();
    const data = await loadTextDataset(TEXT, tokenizer, 32);
    const model = new TrainableGemma(tinyStudent(vocab)).initRandom(3);
    const trainer = new Trainer(model, data, settings());
    const initialValidation = trainer.validationLoss();
    const logs = Array.from({ length: 200 }, () => trainer.trainStep());
    const first = logs[0]!.trainLoss;
    const last = logs.slice(-10).reduce((s, l) => s + l.trainLoss, 0) / 10;
    assert.ok(Math.abs(first - Math.log(vocab)) < 0.5, `initial loss ${first} ≈ ln(${vocab})`);
    assert.ok(last < first / 2, `loss ${first} → ${last}`);
    const finalValidation = logs.at(-1)!.validationLoss!;
    assert.ok(finalValidation < initialValidation - 1, `validation ${initialValidation} → ${finalValidation}`);
  });

  it("saves a checkpoint that reloads to identical logits, runs in loadModel, and resumes exactly", async () => {
    const { dir: tokenizerDir, vocab, tokenizer } = await charSetup();
    const data = await loadTextDataset(TEXT, tokenizer, 16);
    const config = tinyStudent(vocab);
    const s = settings({ steps: 6, seqLen: 16, batch: 2, evalEvery: 100 });

    const straight = new Trainer(new TrainableGemma(config).initRandom(9), data, s);
    for (let i = 0; i < 6; i++) straight.trainStep();

    const first = new Trainer(new TrainableGemma(config).initRandom(9), data, s);
    for (let i = 0; i < 3; i++) first.trainStep();
    const out = mkdtempSync(join(tmpdir(), "gemma-ts-ckpt-"));
    await saveTrainedModel(out, first.model, { tokenizerDir, optimizer: first.optimizer, state: { step: first.step } });

    const reloaded = await loadTrainable(out);
    const ids = [2, 10, 20, 30, 40];
    assert.deepEqual(reloaded.logits(ids), first.model.logits(ids));
    const inference = await loadModel(out, { kernels: "js" });
    const viaLoadModel = await inference.logits(ids);
    const trained = first.model.logits(ids);
    let worst = 0;
    for (let i = 0; i < trained.length; i++) worst = Math.max(worst, Math.abs(trained[i]! - viaLoadModel[i]!));
    assert.ok(worst < 1e-4, `loadModel vs training forward: ${worst}`);
    assert.ok((await inference.generate("And God", { maxTokens: 5, temperature: 0 }).complete()).length > 0);

    const resumed = new Trainer(reloaded, data, s);
    const state = await loadTrainerState(out, resumed.optimizer);
    resumed.step = Number(state!["step"]);
    for (let i = 0; i < 3; i++) resumed.trainStep();
    for (const [name, p] of straight.model.params) assert.deepEqual(resumed.model.param(name), p, name);
  });

  it("rejects missing or empty data and a config that does not fit the vocabulary", async () => {
    const { tokenizer, dir } = await charSetup();
    await assert.rejects(loadTextDataset(join(dir, "nope.txt"), tokenizer, 16), /no such data file/);
    const empty = join(dir, "empty.txt");
    (await import("node:fs")).writeFileSync(empty, "  \n");
    await assert.rejects(loadTextDataset(empty, tokenizer, 16), /the data file is empty/);
    await assert.rejects(loadTextDataset(TEXT, tokenizer, 4096), /too few for one training sequence/);
    assert.throws(() => new TrainableGemma(parseConfigJson(JSON.stringify({ ...tinyGemma2Json(), model_type: "gemma" }))), /training supports Gemma 2/);
  });
});
