import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { ConfigError } from "../../src/errors.js";
import { loadModel } from "../../src/gemma.js";
import { configFromHf } from "../../src/model/gemma/config.js";
import type { KvCache } from "../../src/model/kv-cache.js";
import { readSafetensorsTensors } from "../helpers/safetensors.js";
import { encodeSafetensors } from "../../src/weights/safetensors-writer.js";
import { FIXTURES, tinyGemma4Json, writeRandomModel } from "../helpers/random-model.js";
import { cli } from "../helpers/cli.js";
import { tempDir } from "../helpers/temp.js";

interface Fixture {
  input_ids: number[];
  logits: number[][];
  greedy: { prompt_ids: number[]; generated_ids: number[]; step_logits: number[][] };
}

const SUCCESSORS = ["hf_gemma3", "hf_gemma4_dense", "hf_gemma4_moe", "hf_gemma4_kvshare", "hf_gemma4_keqv"];
const fixture = (name: string) => JSON.parse(readFileSync(`${FIXTURES}${name}/fixture.json`, "utf8")) as Fixture;
const configJson = (name: string) => JSON.parse(readFileSync(`${FIXTURES}${name}/config.json`, "utf8")) as Record<string, unknown>;

function maxAbsDiff(actual: Float32Array, expected: number[][]): number {
  const flat = expected.flat();
  let max = 0;
  for (let i = 0; i < flat.length; i++) max = Math.max(max, Math.abs(actual[i]! - flat[i]!));
  return max;
}

/** A folder with `config` and the fixture's tensors (renamed by `rename`, plus `extra` ones). */
function variantFolder(name: string, config: Record<string, unknown>, rename = (n: string) => n, extra: string[] = []): string {
  const dir = tempDir("gemma-ts-successor");
  const tensors = readSafetensorsTensors(`${FIXTURES}${name}/model.safetensors`).map((t) => ({ ...t, name: rename(t.name) }));
  for (const n of extra) tensors.push({ name: n, dtype: "f32", shape: [4], data: new Float32Array(4) });
  writeFileSync(join(dir, "model.safetensors"), encodeSafetensors(tensors));
  writeFileSync(join(dir, "config.json"), JSON.stringify(config));
  return dir;
}

for (const backend of ["js", "wasm"] as const) {
  describe(`Gemma 3 / Gemma 4 against transformers 5.17 reference logits (${backend} backend)`, () => {
    for (const name of SUCCESSORS) {
      const fx = fixture(name);
      const load = () => loadModel(`${FIXTURES}${name}`, { kernels: backend });

      it(`${name}: prompt logits within 1e-2 of the reference`, async () => {
        const model = await load();
        const diff = maxAbsDiff(await model.logits(fx.input_ids), fx.logits);
        assert.ok(diff <= 1e-2, `max |Δlogit| = ${diff}`);
      });

      it(`${name}: 16 greedy tokens through the KV cache equal the reference, each step's logits within 1e-2`, async () => {
        const model = await load();
        const sequence = model.createSequence();
        let logits = sequence.prefill(fx.greedy.prompt_ids);
        let worst = 0;
        const ids: number[] = [];
        for (const [step, expected] of fx.greedy.step_logits.entries()) {
          worst = Math.max(worst, maxAbsDiff(logits, [expected]));
          let best = 0;
          for (let j = 1; j < logits.length; j++) if (logits[j]! > logits[best]!) best = j;
          ids.push(best);
          if (step < fx.greedy.step_logits.length - 1) logits = sequence.feed([best]);
        }
        assert.deepEqual(ids, fx.greedy.generated_ids);
        assert.ok(worst <= 1e-2, `max |Δlogit| over decode steps = ${worst}`);
      });
    }
  });
}

describe("Gemma 4 with every feature at once (random tiny model)", () => {
  // Window 6, 48 tokens: ring buffers wrap many times; layers 4-7 read layers 2 and 3's keys.
  const dir = writeRandomModel(tinyGemma4Json(), 5);
  const ids = Array.from({ length: 48 }, (_, i) => (i === 0 ? 2 : (i * 53 + 7) % 500));

  for (const backend of ["js", "wasm"] as const) {
    it(`token-by-token decode matches a full recompute at every position, and a prefill in chunks too (${backend})`, async () => {
      const model = await loadModel(dir, { kernels: backend });
      const vocab = model.config.vocabSize;
      const full = await model.logits(ids);
      const stepwise = model.createSequence();
      let worst = 0;
      for (let i = 0; i < ids.length; i++) {
        const step = stepwise.feed([ids[i]!]);
        worst = Math.max(worst, maxAbsDiff(step, [Array.from(full.subarray(i * vocab, (i + 1) * vocab))]));
      }
      const chunked = model.createSequence();
      chunked.feed(ids.slice(0, 20));
      const last = chunked.feed(ids.slice(20));
      worst = Math.max(worst, maxAbsDiff(last, [Array.from(full.subarray((ids.length - 1) * vocab))]));
      assert.ok(worst <= 1e-4, `max |Δlogit| cache vs recompute = ${worst}`);
    });
  }

  it("each Gemma 4 feature changes the logits (none is silently ignored)", async () => {
    const base = await (await loadModel(dir)).logits(ids.slice(0, 16));
    // The same weights read under a config without the feature must compute something else.
    for (const [feature, overrides] of [
      ["final soft-cap", { final_logit_softcapping: null }],
      ["proportional RoPE", { rope_parameters: { full_attention: { rope_type: "default", rope_theta: 1e6 } } }],
      ["sliding window", { sliding_window: 64 }],
    ] as const) {
      const config = JSON.parse(readFileSync(join(dir, "config.json"), "utf8")) as Record<string, unknown>;
      writeFileSync(join(dir, "config.json"), JSON.stringify({ ...config, ...overrides }));
      try {
        const other = await (await loadModel(dir)).logits(ids.slice(0, 16));
        assert.ok(maxAbsDiff(other, [Array.from(base)]) > 1e-3, `${feature} made no difference`);
      } finally {
        writeFileSync(join(dir, "config.json"), JSON.stringify(config));
      }
    }
  });
});

describe("Gemma 3 / Gemma 4 configs", () => {
  it("Gemma 3's older RoPE spelling (rope_theta, rope_scaling, rope_local_base_freq) gives the same logits; without the x8 scaling they differ", async () => {
    const fx = fixture("hf_gemma3");
    const { rope_parameters: _, ...rest } = configJson("hf_gemma3");
    const legacy = { ...rest, rope_theta: 1e6, rope_local_base_freq: 1e4, rope_scaling: { rope_type: "linear", factor: 8 } };
    const model = await loadModel(variantFolder("hf_gemma3", legacy));
    assert.ok(maxAbsDiff(await model.logits(fx.input_ids), fx.logits) <= 1e-2);
    const unscaled = await loadModel(variantFolder("hf_gemma3", { ...rest, rope_theta: 1e6, rope_local_base_freq: 1e4 }));
    assert.ok(maxAbsDiff(await unscaled.logits(fx.input_ids), fx.logits) > 1e-2, "the linear factor must change the logits");
  });

  it("the text model of a multimodal checkpoint loads from its language-model prefix and notes the towers it skips", async () => {
    for (const [name, modelType, prefix, towers] of [
      ["hf_gemma3", "gemma3", "language_model.model.", ["vision_config"]],
      ["hf_gemma4_dense", "gemma4", "model.language_model.", ["vision_config", "audio_config"]],
    ] as const) {
      const fx = fixture(name);
      const { eos_token_id, bos_token_id, ...text } = configJson(name);
      const multimodal: Record<string, unknown> = { model_type: modelType, text_config: { ...text }, eos_token_id, bos_token_id };
      for (const tower of towers) multimodal[tower] = { hidden_size: 8 };
      const dir = variantFolder(name, multimodal, (n) => n.replace(/^model\./, prefix), [
        "vision_tower.patch.weight",
        "multi_modal_projector.w",
      ]);
      const model = await loadModel(dir);
      assert.deepEqual(model.config.family, modelType);
      // The command line says what it skipped, on stderr and in info.
      const run = cli(["generate", "--model", dir, "--prompt-ids", "2,5,7", "--max-tokens", "2"]);
      assert.equal(run.code, 0, run.stderr);
      assert.match(run.stderr, new RegExp(`note: this checkpoint also has a vision ${towers.length > 1 ? "and an audio " : ""}tower`));
      assert.match(cli(["info", "--model", dir]).stdout, /inputs +text only \(image( and audio)? input not supported yet\)/);
      assert.deepEqual(
        (model.config as { unsupportedInputs: string[] }).unsupportedInputs,
        towers.map((t) => (t === "vision_config" ? "image" : "audio")),
      );
      assert.ok(maxAbsDiff(await model.logits(fx.input_ids), fx.logits) <= 1e-2);
    }
  });

  it("KV-sharing layers hold no cache of their own, and checkpoints that still carry their k/v projections load", async () => {
    const model = await loadModel(`${FIXTURES}hf_gemma4_kvshare`);
    const cache = model.createSequence().cache as KvCache;
    assert.equal(cache.layers.length, 12);
    assert.equal(cache.distinctLayers().length, 8);
    assert.equal(cache.layers[11], cache.layers[5]);
    assert.equal(cache.layers[8], cache.layers[7]);
    assert.equal(cache.layers[10], cache.layers[7]);
    const extra = ["model.layers.11.self_attn.k_proj.weight", "model.layers.11.self_attn.v_proj.weight"];
    const withExtra = await loadModel(variantFolder("hf_gemma4_kvshare", configJson("hf_gemma4_kvshare"), (n) => n, extra));
    const fx = fixture("hf_gemma4_kvshare");
    assert.ok(maxAbsDiff(await withExtra.logits(fx.input_ids), fx.logits) <= 1e-2);
  });

  it("bad configs name the field: unknown rope type, inconsistent per-layer overrides, top-k above the experts", () => {
    const expectField = (json: Record<string, unknown>, field: RegExp) =>
      assert.throws(
        () => configFromHf(json, "x/config.json"),
        (e: unknown) => e instanceof ConfigError && field.test(e.message),
      );
    const g3 = configJson("hf_gemma3");
    expectField(
      { ...g3, rope_parameters: { full_attention: { rope_type: "yarn", rope_theta: 1e6 } } },
      /rope_parameters\.full_attention\.rope_type "yarn"/,
    );
    expectField({ ...g3, rope_parameters: { full_attention: { rope_type: "linear", rope_theta: 1e6 } } }, /needs a factor/);
    const kv = configJson("hf_gemma4_kvshare");
    expectField(
      { ...kv, per_layer_config: { "5": { head_dim: 32 }, "11": { head_dim: 16 } } },
      /per_layer_config gives them different shapes/,
    );
    expectField({ ...kv, per_layer_config: { "12": { head_dim: 32 } } }, /per_layer_config key "12"/);
    expectField({ ...kv, per_layer_config: { "5": { head_dim: 32, window: 3 } } }, /per_layer_config\.5 sets window/);
    expectField({ ...kv, num_kv_shared_layers: 12 }, /num_kv_shared_layers/);
    expectField(
      { ...kv, layer_types: [...Array(6).fill("full_attention"), ...Array(6).fill("sliding_attention")], num_kv_shared_layers: 6 },
      /no earlier local layer/,
    );
    expectField({ ...configJson("hf_gemma4_moe"), top_k_experts: 5 }, /top_k_experts \(5\) exceeds num_experts \(4\)/);
    expectField({ ...configJson("hf_gemma4_moe"), num_experts: null }, /num_experts/);
    expectField({ ...g3, model_type: "gemma5_text" }, /model_type "gemma5_text"/);
  });

  it("Gemma 4 configs written before per_layer_config take global_head_dim and num_global_key_value_heads", () => {
    const { per_layer_config: _, ...rest } = configJson("hf_gemma4_keqv");
    const c = configFromHf({ ...rest, global_head_dim: 32, num_global_key_value_heads: 1 });
    assert.deepEqual(
      c.layers.map((l) => [l.headDim, l.nKvHeads, l.valuesFromKeys]),
      [...Array(5).fill([16, 2, false]), [32, 1, true]],
    );
    // Without the keys-as-values flag the global KV-head count stays the model's.
    assert.equal(
      configFromHf({ ...rest, attention_k_eq_v: false, global_head_dim: 32, num_global_key_value_heads: 1 }).layers[5]!.nKvHeads,
      2,
    );
  });
});
