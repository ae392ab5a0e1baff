/**
 * The WebGPU kernels in headless Chromium (`--enable-unsafe-webgpu`: a SwiftShader adapter on a
 * CPU-only machine), each against the TypeScript reference on random inputs with odd sizes.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { browserTestSkip } from "../helpers/chromium.js";
import { runPageScript, type PageRun } from "../helpers/page-script.js";
import { FEATURE_KEYS, TOLERANCE } from "./webgpu-tolerances.js";
import { tempDir } from "../helpers/temp.js";

const skip = browserTestSkip(true);

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
    assert.deepEqual(Object.keys(results).sort(), [...Object.keys(TOLERANCE), ...FEATURE_KEYS].sort());
  });

  it("ran the subgroup matmuls (Chromium's SwiftShader adapter has subgroups, not shader-f16)", () => {
    assert.equal(typeof results, "object", String(results));
    assert.equal((results as Record<string, number>)["device has subgroups"], 1);
  });

  for (const [kernel, tolerance] of Object.entries(TOLERANCE)) {
    it(`${kernel}: max |GPU - reference| <= ${tolerance}`, () => {
      const diff = (results as Record<string, number>)[kernel];
      assert.ok(diff !== undefined && diff <= tolerance, `${kernel}: ${diff}`);
    });
  }
});
