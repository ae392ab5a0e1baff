/**
 * The Gemma forward pass on WebGPU in headless Chromium (SwiftShader adapter, no GPU): the
 * gemma_pytorch and transformers fixtures through the GPU forward give the reference logits and
 * greedy tokens (the KV cache on the device); a Gemma 4 model is refused with its reason so the
 * page can fall back to WebAssembly.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import { build } from "esbuild";
import { chromium, type Browser } from "playwright-core";
import { startWebServer, type RunningWebServer } from "../../src/server/web.js";
import { CHROMIUM, CHROMIUM_ARGS } from "../helpers/chromium.js";
import { FIXTURES } from "../helpers/random-model.js";
import type { FixtureResult } from "./webgpu-forward.page.js";

const REQUIRED = process.env["GEMMA_TS_REQUIRE_BROWSER"] === "1";
const skip = !existsSync(CHROMIUM) && !REQUIRED ? `no Chromium at ${CHROMIUM} (apt-get install chromium)` : false;

describe("the Gemma forward pass on WebGPU (headless Chromium, SwiftShader)", { skip }, () => {
  let browser: Browser;
  let server: RunningWebServer;
  let results: FixtureResult[] | string;

  before(async () => {
    const bundle = await build({
      entryPoints: [new URL("./webgpu-forward.page.ts", import.meta.url).pathname],
      bundle: true,
      format: "esm",
      platform: "browser",
      write: false,
      logLevel: "warning",
      alias: { "@huggingface/gguf": new URL("../../node_modules/@huggingface/gguf/dist/browser/index.mjs", import.meta.url).pathname },
      // Named only in the grammar engine's Node branches (as in scripts/build-web.ts).
      external: ["url", "module"],
    });
    server = await startWebServer({ modelsDir: FIXTURES, port: 0 });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: [...CHROMIUM_ARGS, "--enable-unsafe-webgpu"] });
    const page = await browser.newPage();
    await page.goto(server.url);
    await page.addScriptTag({ content: bundle.outputFiles[0]!.text, type: "module" });
    // A module script runs after addScriptTag returns: wait for what it sets.
    await page.waitForFunction(() => "gpuForward" in window);
    results = await page.evaluate(() => (window as unknown as { gpuForward: Promise<FixtureResult[] | string> }).gpuForward);
  });
  after(async () => {
    await browser?.close();
    await server?.close();
  });

  for (const name of ["tiny_a", "tiny_b_27blike", "g1_tiny", "hf_gemma3"]) {
    it(`${name}: logits within 1e-2 of the reference, 16 greedy tokens identical through the device KV cache`, () => {
      assert.ok(Array.isArray(results), String(results));
      const r = results.find((x) => x.name === name)!;
      assert.equal(r.reason, undefined);
      assert.ok(r.maxDiff! <= 1e-2, `max |Δlogit| ${r.maxDiff}`);
      assert.deepEqual(r.greedy, r.expectedGreedy);
    });
  }

  it("refuses a Gemma 4 model with its reason, for the page to fall back to WebAssembly", () => {
    assert.ok(Array.isArray(results), String(results));
    assert.match(results.find((x) => x.name === "hf_gemma4_dense")!.reason!, /not on WebGPU yet/);
  });
});
