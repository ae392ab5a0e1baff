/**
 * The Gemma forward pass on WebGPU in headless Chromium (SwiftShader adapter, no GPU): the
 * gemma_pytorch and transformers fixtures through the GPU forward give the reference logits and
 * greedy tokens (the KV cache on the device); a Gemma 4 model is refused with its reason so the
 * page can fall back to WebAssembly.
 */
import assert from "node:assert/strict";
import { cpSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadConfig, loadModel } from "../../src/gemma.js";
import type { GemmaConfig } from "../../src/model/gemma/config.js";
import { gpuUnsupported } from "../../src/model/gemma/gpu-forward.js";
import { encodeGgufModel } from "../../src/model/gguf-export.js";
import { openCheckpointFolder } from "../../src/weights/checkpoint-folder.js";
import { after, before, describe, it } from "node:test";
import { browserTestSkip } from "../helpers/chromium.js";
import { runPageScript, type PageRun } from "../helpers/page-script.js";
import { FIXTURES } from "../helpers/random-model.js";
import type { FixtureResult } from "./webgpu-forward.page.js";
import { tempDir } from "../helpers/temp.js";
import { GPU_FIXTURES, GPU_GREEDY_TOKENS, SPLIT_FIXTURES, SPLIT_GREEDY_TOKENS, SPLIT_PREFIX } from "./webgpu-fixtures.js";

const skip = browserTestSkip(true);

describe("the Gemma forward pass on WebGPU (headless Chromium, SwiftShader)", { skip }, () => {
  let run: PageRun<FixtureResult[]>;
  let results: FixtureResult[] | string;
  let modelsDir: string;

  before(async () => {
    // The fixtures, and hf_gemma3 as Q8_0 and Q4_0 GGUF files, in one folder the page reads.
    const models = tempDir("gemma-ts-webgpu-models");
    for (const name of GPU_FIXTURES) cpSync(join(FIXTURES, name), join(models, name), { recursive: true });
    for (const type of ["Q8_0", "Q4_0"] as const) {
      const checkpoint = await openCheckpointFolder(join(FIXTURES, "hf_gemma3"));
      const config = (await loadConfig(join(FIXTURES, "hf_gemma3"))) as GemmaConfig;
      writeFileSync(join(models, `hf_gemma3-${type.toLowerCase()}.gguf`), await encodeGgufModel(checkpoint, config, { matrixType: type }));
      await checkpoint.close();
    }
    modelsDir = models;
    run = await runPageScript(new URL("./webgpu-forward.page.ts", import.meta.url).pathname, models, "gpuForward");
    results = run.result;
  });
  after(() => run?.close());

  for (const name of GPU_FIXTURES) {
    it(`${name}: logits within 1e-2 of the reference, the first ${GPU_GREEDY_TOKENS} greedy tokens identical through the device KV cache; a lost device is an error`, () => {
      assert.ok(Array.isArray(results), String(results));
      const r = results.find((x) => x.name === name)!;
      assert.equal(r.reason, undefined);
      console.log(`${name} on WebGPU: max |Δlogit| ${r.maxDiff!.toExponential(1)} vs the reference`);
      assert.ok(r.maxDiff! <= 1e-2, `max |Δlogit| ${r.maxDiff}`);
      assert.equal(r.expectedGreedy!.length, GPU_GREEDY_TOKENS);
      assert.deepEqual(r.greedy, r.expectedGreedy);
      assert.match(r.afterLoss!, /load the model again/);
    });
  }

  for (const name of SPLIT_FIXTURES) {
    it(`${name}: matrices split over 4 KiB buffers (8 KiB: one expert) and prompts in passes of 3 tokens give the same logits (${SPLIT_PREFIX}-token prefix) and greedy tokens`, () => {
      assert.ok(Array.isArray(results), String(results));
      const r = results.find((x) => x.name === name)!;
      const split = r.split!;
      assert.ok(split.weightBuffers > 2 * split.unsplitBuffers, `${split.weightBuffers} buffers split vs ${split.unsplitBuffers} whole`);
      assert.equal(split.passes, Math.ceil(SPLIT_PREFIX / 3));
      assert.ok(split.maxDiff <= 1e-2, `max |Δlogit| ${split.maxDiff} vs the reference`);
      assert.ok(split.maxDiffToWhole <= 1e-4, `max |Δlogit| ${split.maxDiffToWhole} vs one buffer per matrix and one pass`);
      assert.deepEqual(split.greedy, r.expectedGreedy!.slice(0, SPLIT_GREEDY_TOKENS));
    });
  }

  for (const type of ["q8_0", "q4_0"]) {
    it(`hf_gemma3 as ${type} GGUF: the GPU's logits against the WebAssembly backend's (top-1 agreement, max |Δ|)`, async () => {
      assert.ok(Array.isArray(results), String(results));
      const gpu = results.find((x) => x.name === `hf_gemma3-${type}.gguf`)!;
      assert.equal(gpu.reason, undefined);
      const fx = JSON.parse(readFileSync(join(FIXTURES, "hf_gemma3", "fixture.json"), "utf8")) as { input_ids: number[] };
      const wasm = await (await loadModel(join(modelsDir, `hf_gemma3-${type}.gguf`), { kernels: "wasm" })).logits(fx.input_ids);
      const vocab = 512;
      let maxDiff = 0;
      let agree = 0;
      const positions = fx.input_ids.length;
      for (let p = 0; p < positions; p++) {
        let a = 0;
        let b = 0;
        for (let j = 0; j < vocab; j++) {
          maxDiff = Math.max(maxDiff, Math.abs(gpu.logits![p * vocab + j]! - wasm[p * vocab + j]!));
          if (gpu.logits![p * vocab + j]! > gpu.logits![p * vocab + a]!) a = j;
          if (wasm[p * vocab + j]! > wasm[p * vocab + b]!) b = j;
        }
        if (a === b) agree++;
      }
      // The GPU multiplies dequantized weights by f32 activations; WebAssembly, as llama.cpp, first
      // rounds the activations to int8 blocks: the difference is that rounding, through 7 layers.
      console.log(`hf_gemma3 ${type}: top-1 agreement ${agree}/${positions}, max |Δlogit| ${maxDiff.toFixed(3)} (GPU vs WebAssembly)`);
      assert.ok(agree >= 0.9 * positions, `top-1 agreement ${agree}/${positions}`);
      assert.ok(maxDiff <= 1, `max |Δlogit| ${maxDiff}`);
    });
  }

  it("a shader the device rejects fails the forward pass with the device's message", () => {
    assert.ok(Array.isArray(results), String(results));
    assert.match(results.find((x) => x.name === "rejected-shader")!.reason ?? "", /the GPU rejected the forward pass: .*\S/);
  });

  it("refuses a prompt chunk of 0 tokens and a binding limit that is not a number, naming the option", () => {
    assert.ok(Array.isArray(results), String(results));
    assert.match(
      results.find((x) => x.name === "prompt-chunk-0")!.reason ?? "",
      /promptChunk must be a positive whole number of tokens, not 0/,
    );
    assert.match(
      results.find((x) => x.name === "binding-bytes-nan")!.reason ?? "",
      /maxBindingBytes must be a whole number of bytes, at least 4, not NaN/,
    );
  });

  it("refuses a model one of whose matrix rows exceeds the binding limit, with the reason", () => {
    assert.ok(Array.isArray(results), String(results));
    assert.match(
      results.find((x) => x.name === "over-limit")!.reason ?? "",
      /one row of a \d+ × \d+ f32 matrix \(\d+ bytes\) exceeds the binding limit of 64/,
    );
  });

  it("refuses a mixture of experts that picks more experts per token than the GPU's top-k holds", async () => {
    const config = (await loadConfig(join(FIXTURES, "hf_gemma4_moe"))) as GemmaConfig;
    assert.equal(gpuUnsupported(config), null);
    assert.match(gpuUnsupported({ ...config, moe: { ...config.moe!, topK: 17, experts: 32 } })!, /more than 16 experts per token/);
  });
});
