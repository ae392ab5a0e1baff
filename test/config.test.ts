import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { configFromHf, parseConfigJson, PRESETS } from "../src/model/gemma/config.js";
import { parameterCount } from "../src/model/gemma/weights.js";
import { cli } from "./helpers/cli.js";
import { ConfigError } from "../src/errors.js";
import { FIXTURES, tinyGemma2Json } from "./helpers/random-model.js";

describe("config", () => {
  it("reads the Gemma 2 fixture config.json", () => {
    const c = parseConfigJson(readFileSync(`${FIXTURES}tiny_b_27blike/config.json`, "utf8"));
    assert.equal(c.family, "gemma2");
    assert.equal(c.dModel, 80);
    assert.equal(c.nKvHeads, 1);
    assert.equal(c.queryPreAttnScalar, 20);
    assert.equal(c.slidingWindow, 5);
    assert.deepEqual(c.layerTypes, ["local", "global", "local", "global", "local", "global"]);
    assert.equal(c.attnSoftcap, 50);
    assert.equal(c.finalSoftcap, 30);
    assert.equal(c.sandwichNorms, true);
  });

  it("reads Gemma 1: all global, no caps, 1/sqrt(head_dim), two norms", () => {
    const c = parseConfigJson(readFileSync(`${FIXTURES}g1_tiny/config.json`, "utf8"));
    assert.equal(c.family, "gemma");
    assert.deepEqual(c.layerTypes, ["global", "global", "global", "global"]);
    assert.equal(c.slidingWindow, null);
    assert.equal(c.attnSoftcap, null);
    assert.equal(c.finalSoftcap, null);
    assert.equal(c.queryPreAttnScalar, 16);
    assert.equal(c.sandwichNorms, false);
  });

  it("accepts the field-name variants: rope_parameters, sliding_window_size, layer_types, hidden_act", () => {
    const json = tinyGemma2Json({ rope_theta: undefined, rope_parameters: { rope_type: "default", rope_theta: 5000 } });
    delete json["sliding_window"];
    json["sliding_window_size"] = 7;
    json["layer_types"] = ["full_attention", "sliding_attention", "full_attention", "sliding_attention"];
    delete json["hidden_activation"];
    json["hidden_act"] = "gelu_pytorch_tanh";
    const c = configFromHf(json);
    assert.equal(c.rope.global.theta, 5000);
    assert.equal(c.slidingWindow, 7);
    assert.deepEqual(c.layerTypes, ["global", "local", "global", "local"]);
    assert.equal(c.activation, "gelu_tanh");
  });

  it("takes legacy Gemma 1 hidden_act 'gelu' as the tanh GELU, but an explicit hidden_activation 'gelu' as exact", () => {
    const g1 = JSON.parse(readFileSync(`${FIXTURES}g1_tiny/config.json`, "utf8"));
    delete g1.hidden_activation;
    g1.hidden_act = "gelu";
    assert.equal(configFromHf(g1).activation, "gelu_tanh");
    assert.equal(configFromHf(tinyGemma2Json({ hidden_activation: "gelu" })).activation, "gelu_exact");
  });

  it("defaults layer types to local on even layers, layer 0 local", () => {
    const json = tinyGemma2Json();
    delete json["layer_types"];
    assert.deepEqual(configFromHf(json).layerTypes, ["local", "global", "local", "global"]);
  });

  const bad: [string, Record<string, unknown>, RegExp, string][] = [
    ["unknown model_type", { model_type: "llama" }, /unsupported model: model_type "llama"/, "model_type"],
    ["missing model_type", { model_type: undefined }, /no model_type/, "model_type"],
    [
      "heads that don't divide",
      { num_key_value_heads: 3 },
      /num_attention_heads \(4\) must be a multiple of num_key_value_heads \(3\)/,
      "num_key_value_heads",
    ],
    [
      "missing hidden_size",
      { hidden_size: undefined },
      /hidden_size must be a positive integer up to 16,777,216; it is missing/,
      "hidden_size",
    ],
    [
      "non-integer layers",
      { num_hidden_layers: 2.5 },
      /num_hidden_layers must be a positive integer up to 1,024; found 2.5/,
      "num_hidden_layers",
    ],
    [
      "a million layers",
      { num_hidden_layers: 1_000_000 },
      /num_hidden_layers must be a positive integer up to 1,024; found 1000000/,
      "num_hidden_layers",
    ],
    [
      "absurd context",
      { max_position_embeddings: 2 ** 40 },
      /max_position_embeddings must be a positive integer up to 2,097,152/,
      "max_position_embeddings",
    ],
    ["missing head_dim", { head_dim: undefined }, /head_dim/, "head_dim"],
    ["odd head_dim", { head_dim: 7 }, /head_dim must be even/, "head_dim"],
    [
      "missing query_pre_attn_scalar",
      { query_pre_attn_scalar: undefined },
      /query_pre_attn_scalar must be a positive number; it is missing/,
      "query_pre_attn_scalar",
    ],
    ["missing sliding window", { sliding_window: undefined }, /sliding_window_size must be a positive integer/, "sliding_window_size"],
    [
      "layer_types of wrong length",
      { layer_types: ["full_attention"] },
      /layer_types must be a list of num_hidden_layers \(4\)/,
      "layer_types",
    ],
    [
      "unknown layer type",
      { layer_types: ["full_attention", "x", "full_attention", "full_attention"] },
      /layer_types\[1\] is "x"/,
      "layer_types",
    ],
    ["unknown activation", { hidden_activation: "relu" }, /hidden_activation "relu" is not supported/, "hidden_activation"],
    ["rope scaling", { rope_scaling: { type: "linear", factor: 2 } }, /rope_scaling is not supported/, "rope_scaling"],
    ["eos outside vocab", { eos_token_id: 500 }, /eos_token_id 500 is outside the vocabulary of 96/, "eos_token_id"],
    ["untied embeddings", { tie_word_embeddings: false }, /tie_word_embeddings false/, "tie_word_embeddings"],
  ];
  for (const [what, overrides, message, field] of bad) {
    it(`rejects ${what}, naming the field`, () => {
      const json = tinyGemma2Json(overrides);
      for (const [k, v] of Object.entries(overrides)) if (v === undefined) delete json[k];
      assert.throws(
        () => configFromHf(json),
        (e: unknown) => e instanceof ConfigError && message.test(e.message) && e.field === field,
      );
    });
  }

  it("rejects malformed JSON and non-objects with the file name", () => {
    assert.throws(() => parseConfigJson("{ not json", "x/config.json"), /x\/config.json: not valid JSON/);
    assert.throws(() => parseConfigJson("[1, 2]", "x/config.json"), /expected a JSON object/);
  });

  it("has presets with the published sizes (GEMMA2.md §1, §4)", () => {
    assert.equal(PRESETS["gemma2-27b"].queryPreAttnScalar, 144);
    assert.equal(PRESETS["gemma2-9b"].queryPreAttnScalar, 256);
    assert.equal(PRESETS["gemma2-2b"].layerTypes.filter((t) => t === "local").length, 13);
    assert.equal(PRESETS["gemma-2b"].nKvHeads, 1);
    // Published parameter counts: 2.61B, 9.24B, 27.2B; Gemma 1: 2.51B, 8.54B.
    const billions = (name: keyof typeof PRESETS) => Math.round(parameterCount(PRESETS[name]) / 1e7) / 100;
    assert.equal(billions("gemma2-2b"), 2.61);
    assert.equal(billions("gemma2-9b"), 9.24);
    assert.equal(billions("gemma2-27b"), 27.23);
    assert.equal(billions("gemma-2b"), 2.51);
    assert.equal(billions("gemma-7b"), 8.54);
  });

  it("has Gemma 3 presets whose sizes match the Gemma 3 report's Table 1 (non-embedding 698M, 3,209M, 10,759M, 25,600M)", () => {
    const nonEmbedding = (name: keyof typeof PRESETS) => {
      const c = PRESETS[name];
      return Math.round((parameterCount(c) - c.vocabSize * c.dModel) / 1e6);
    };
    assert.equal(nonEmbedding("gemma3-1b"), 698);
    assert.equal(nonEmbedding("gemma3-4b"), 3209);
    assert.equal(nonEmbedding("gemma3-12b"), 10759);
    assert.equal(nonEmbedding("gemma3-27b"), 25600);
    assert.equal(Math.round((PRESETS["gemma3-1b"].vocabSize * PRESETS["gemma3-1b"].dModel) / 1e6), 302);
    assert.deepEqual(PRESETS["gemma3-27b"].rope.global, { type: "linear", theta: 1e6, factor: 8, partialRotary: 1 });
    assert.equal(PRESETS["gemma3-1b"].rope.global.type, "default");
  });

  it("gemma-ts info --preset prints the published Gemma 4 sizes: 31B 30.7B, 26B-A4B 25.2B with 3.8B active, E2B/E4B effective 2.3B/4.6B", () => {
    const json = (name: string) =>
      JSON.parse(cli(["info", "--preset", name, "--json"]).stdout) as { parameters: number; activeParameters: number };
    const billions = (n: number) => Math.round(n / 1e8) / 10;
    assert.equal(billions(json("gemma4-31b").parameters), 30.7);
    const moe = json("gemma4-26b-a4b");
    assert.equal(billions(moe.parameters), 25.2);
    assert.equal(billions(moe.activeParameters), 3.8);
    // "Effective" parameters of the E models leave out the per-layer input table.
    for (const [name, effective] of [
      ["gemma4-e2b", 2.3],
      ["gemma4-e4b", 4.6],
    ] as const) {
      const c = PRESETS[name];
      const table = c.perLayerInput!.vocabSize * c.nLayers * c.perLayerInput!.dim;
      assert.equal(billions(json(name).parameters - table), effective);
    }
    const text = cli(["info", "--preset", "gemma4-26b-a4b"]).stdout;
    assert.match(text, /25\.23B parameters, 3\.82B active per token/);
    assert.match(text, /128 of width 704, top 8 per token/);
    assert.equal(cli(["info", "--preset", "gemma9"]).code, 1);
  });
});
