/**
 * The WebGPU kernels in headless Chromium (`--enable-unsafe-webgpu`: a SwiftShader adapter on a
 * CPU-only machine), each against the TypeScript reference on random inputs with odd sizes.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import { CHROMIUM } from "../helpers/chromium.js";
import { runPageScript, type PageRun } from "../helpers/page-script.js";
import { tempDir } from "../helpers/temp.js";

const REQUIRED = process.env["GEMMA_TS_REQUIRE_BROWSER"] === "1";
const skip = !existsSync(CHROMIUM) && !REQUIRED ? `no Chromium at ${CHROMIUM} (apt-get install chromium)` : false;

/** Largest |GPU − reference| each kernel may show: f32 sums in another order; GELU/tanh/exp in the GPU's own f32 math. */
const TOLERANCE: Record<string, number> = {
  "matmul f32": 1e-4,
  "matmul f16": 1e-4,
  "matmul bf16": 1e-4,
  "matmul q8_0": 1e-4,
  "matmul q4_0": 1e-4,
  "matmul q4_k": 1e-4,
  "matmul q5_k": 1e-4,
  "matmul q6_k": 1e-4,
  "matmul f32, 40001 rows": 1e-4,
  "embed f32": 1e-6,
  "embed q8_0": 1e-6,
  "embed q4_0": 1e-6,
  "embed q4_k": 1e-6,
  "embed q5_k": 1e-6,
  "embed q6_k": 1e-6,
  rmsnorm: 1e-4,
  rope: 1e-4,
  "attention (global, soft-cap 50)": 1e-4,
  "attention (window 5, no soft-cap)": 1e-4,
  "geglu gelu_tanh": 1e-4,
  "geglu gelu_exact": 1e-4,
  softcap: 1e-4,
  add: 1e-6,
};

describe("WebGPU kernels in headless Chromium against the TypeScript reference", { skip }, () => {
  let run: PageRun<Record<string, number>>;
  let results: Record<string, number> | string;

  before(async () => {
    run = await runPageScript(new URL("./webgpu-kernels.page.ts", import.meta.url).pathname, tempDir("gemma-ts-webgpu"), "webgpuKernels");
    results = run.result;
  });
  after(() => run?.close());

  it("finds a WebGPU adapter and runs every kernel", () => {
    assert.equal(typeof results, "object", String(results));
    assert.deepEqual(Object.keys(results).sort(), Object.keys(TOLERANCE).sort());
  });

  for (const [kernel, tolerance] of Object.entries(TOLERANCE)) {
    it(`${kernel}: max |GPU - reference| <= ${tolerance}`, () => {
      const diff = (results as Record<string, number>)[kernel];
      assert.ok(diff !== undefined && diff <= tolerance, `${kernel}: ${diff}`);
    });
  }
});
