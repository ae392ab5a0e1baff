import assert from "node:assert/strict";
import { readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { BUNDLED_MODEL } from "../../src/bundled.js";
import { parseConfigJson } from "../../src/model/gemma/config.js";
import { loadModel } from "../../src/gemma.js";
import { loadTokenizer } from "../../src/tokenizer/load.js";
import { loadTrainable, loadTrainerState, saveTrainedModel } from "../../src/train/checkpoint-io.js";
import { loadTextDataset } from "../../src/train/data.js";
import { loadChatExamples, saveLoraAdapter, trainLora } from "../../src/train/lora.js";
import { TrainableGemma } from "../../src/train/model.js";
import { Trainer, type TrainSettings } from "../../src/train/trainer.js";
import { FIXTURES, tinyGemma2Json } from "../helpers/random-model.js";
import { writeCharTokenizer } from "../helpers/tokenizer.js";
import { tempDir } from "../helpers/temp.js";

const TEXT = join(FIXTURES, "text/genesis.txt");

function tinyStudent(vocab: number, overrides: Record<string, unknown> = {}) {
  return parseConfigJson(
    JSON.stringify(
      tinyGemma2Json({
        vocab_size: vocab,
        hidden_size: 32,
        intermediate_size: 64,
        num_attention_heads: 2,
        num_key_value_heads: 1,
        head_dim: 16,
        query_pre_attn_scalar: 16,
        num_hidden_layers: 2,
        sliding_window: 8,
        max_position_embeddings: 64,
        ...overrides,
      }),
    ),
  );
}

async function charSetup() {
  const dir = tempDir("gemma-ts-train");
  const vocab = writeCharTokenizer(dir, readFileSync(TEXT, "utf8"));
  const tokenizer = await loadTokenizer(dir);
  return { dir, vocab, tokenizer };
}

const settings = (overrides: Partial<TrainSettings> = {}): TrainSettings => ({
  steps: 200,
  batch: 4,
  seqLen: 32,
  lr: 3e-3,
  warmup: 10,
  seed: 1,
  alpha: 0,
  evalEvery: 50,
  evalSequences: 0,
  ...overrides,
});

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
    const out = tempDir("gemma-ts-ckpt");
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

  it("LoRA: fine-tunes adapters on chat data, saves them as PEFT, and loadModel merges them", async () => {
    const { dir, vocab, tokenizer } = await charSetup();
    // Embedding rows large enough that a frozen output head can express confident predictions.
    const base = new TrainableGemma(tinyStudent(vocab)).initRandom(4, 0.5);
    await saveTrainedModel(dir, base, { tokenizerDir: dir });
    const chat = join(dir, "chat.jsonl");
    const lines = ["What is the first day?", "Who made the earth?", "Say something."].map((q) =>
      JSON.stringify({
        messages: [
          { role: "user", content: q },
          { role: "assistant", content: "Let there be light." },
        ],
      }),
    );
    writeFileSync(chat, `${lines.join("\n")}\n`);
    const examples = await loadChatExamples(chat, tokenizer, 64);
    // Only the reply and its turn end are scored.
    const scored = examples[0]!.nextTokens.filter((_, t) => examples[0]!.mask[t] === 1);
    assert.equal(tokenizer.decode([...scored]), "Let there be light.<end_of_turn>\n");

    const model = await loadTrainable(dir);
    model.addLora(4, 8);
    const logs = trainLora(model, examples, { rank: 4, alpha: 8, steps: 40, batch: 3, lr: 3e-2, warmup: 2, seed: 1 });
    assert.ok(logs.at(-1)!.loss < logs[0]!.loss / 10, `loss ${logs[0]!.loss} → ${logs.at(-1)!.loss}`);
    for (const [name, p] of base.params) assert.deepEqual(model.param(name), p, `${name} stays frozen`);

    const adapter = join(dir, "adapter");
    await saveLoraAdapter(adapter, model, { rank: 4, alpha: 8 }, dir);
    const config = JSON.parse(readFileSync(join(adapter, "adapter_config.json"), "utf8")) as {
      peft_type: string;
      r: number;
      target_modules: string[];
    };
    assert.equal(config.peft_type, "LORA");
    assert.deepEqual(config.target_modules.sort(), ["down_proj", "gate_proj", "k_proj", "o_proj", "q_proj", "up_proj", "v_proj"]);
    const header = readFileSync(join(adapter, "adapter_model.safetensors"));
    assert.match(
      header.subarray(8, 8 + Number(header.readBigUInt64LE(0))).toString(),
      /base_model\.model\.model\.layers\.0\.self_attn\.q_proj\.lora_A\.weight/,
    );

    const ids = [2, 10, 20, 30];
    const merged = await (await loadModel(dir, { kernels: "js", lora: adapter })).logits(ids);
    const plain = await (await loadModel(dir, { kernels: "js" })).logits(ids);
    const trained = model.logits(ids);
    let toTrained = 0;
    let toPlain = 0;
    for (let i = 0; i < trained.length; i++) {
      toTrained = Math.max(toTrained, Math.abs(merged[i]! - trained[i]!));
      toPlain = Math.max(toPlain, Math.abs(merged[i]! - plain[i]!));
    }
    assert.ok(toTrained < 1e-4, `merged adapter vs training forward: ${toTrained}`);
    assert.ok(toPlain > 1e-2, "the adapter changes the model");
    await assert.rejects(loadModel(dir, { kernels: "js", lora: join(dir, "nope") }), /adapter_config\.json: cannot read/);
  });

  it("rejects missing or empty data and a config that does not fit the vocabulary", async () => {
    const { tokenizer, dir } = await charSetup();
    await assert.rejects(loadTextDataset(join(dir, "nope.txt"), tokenizer, 16), /no such data file/);
    const empty = join(dir, "empty.txt");
    (await import("node:fs")).writeFileSync(empty, "  \n");
    await assert.rejects(loadTextDataset(empty, tokenizer, 16), /the data file is empty/);
    await assert.rejects(loadTextDataset(TEXT, tokenizer, 4096), /too few for one training sequence/);
    assert.throws(
      () => new TrainableGemma(parseConfigJson(JSON.stringify({ ...tinyGemma2Json(), model_type: "gemma" }))),
      /training supports Gemma 2/,
    );
  });
});

describe("saved checkpoints", () => {
  it("a GGUF model given as the tokenizer contributes its vocabulary only, not its weights", async () => {
    const source = await loadTokenizer(BUNDLED_MODEL);
    const out = tempDir("gemma-ts-ggtok");
    const config = tinyStudent(source.vocabSize);
    await saveTrainedModel(out, new TrainableGemma(config).initRandom(1), { tokenizerDir: BUNDLED_MODEL });
    const copied = statSync(join(out, "tokenizer.gguf")).size;
    assert.ok(copied < statSync(BUNDLED_MODEL).size / 10, `tokenizer.gguf is ${copied} bytes`);
    const text = "In the beginning God created the heaven and the earth.";
    assert.deepEqual((await loadTokenizer(out)).encode(text), source.encode(text));
  });
});
