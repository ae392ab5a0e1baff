/**
 * The webgpu backend in Node: Dawn through the optional package `webgpu`. Without the package,
 * loading says which package to install; with it and GEMMA_TS_NODE_WEBGPU=1, fixtures run through
 * Dawn (a GPU, or Mesa's lavapipe on the CPU) and match the reference. Those runs are opt-in, each
 * in its own process and retried when Dawn crashes (the current package does, now and then), so
 * this path can never make CI flaky.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { describe, it } from "node:test";
import { loadModel } from "../../src/gemma.js";
import { cli } from "../helpers/cli.js";
import { FEATURE_KEYS, TOLERANCE } from "../web/webgpu-tolerances.js";

const DAWN_PACKAGE = "webgpu";
const hasDawn = await import(DAWN_PACKAGE).then(
  () => true,
  () => false,
);
const OPTED_IN = process.env["GEMMA_TS_NODE_WEBGPU"] === "1";

describe("the webgpu backend in Node", () => {
  it("without the optional webgpu package, names it", { skip: hasDawn ? "the webgpu package is installed here" : false }, async () => {
    await assert.rejects(loadModel(undefined, { kernels: "webgpu" }), /optional package `webgpu` \(npm install webgpu\)/);
    const run = cli(["generate", "--backend", "webgpu", "-n", "2", "-p", "In the beginning"]);
    assert.equal(run.code, 1, run.stderr);
    assert.match(run.stderr, /npm install webgpu/);
  });

  it("takes neither threads nor relaxedSimd (they set the wasm kernels)", async () => {
    await assert.rejects(loadModel(undefined, { kernels: "webgpu", threads: 2 }), /webgpu backend takes neither/);
    await assert.rejects(loadModel(undefined, { kernels: "webgpu", relaxedSimd: false }), /webgpu backend takes neither/);
  });

  const optIn = !OPTED_IN ? "opt-in: GEMMA_TS_NODE_WEBGPU=1 with the webgpu package and a Vulkan driver" : false;

  it("every WebGPU kernel through Dawn matches the TypeScript reference (the page test's bounds)", { skip: optIn }, () => {
    const results = runRetried<Record<string, number>>("./webgpu-node-kernels.child.ts", []);
    assert.deepEqual(Object.keys(results).sort(), [...Object.keys(TOLERANCE), ...FEATURE_KEYS].sort());
    console.log(`Dawn's device: subgroups ${results["device has subgroups"]}, shader-f16 ${results["device has shader-f16"]}`);
    for (const [kernel, tolerance] of Object.entries(TOLERANCE)) assert.ok(results[kernel]! <= tolerance, `${kernel}: ${results[kernel]}`);
  });

  for (const name of ["tiny_a", "tiny_b_27blike", "g1_tiny", "hf_gemma3"]) {
    it(`${name} through Dawn matches the reference (max |Δlogit| <= 1e-2, greedy identical)`, { skip: optIn }, () => {
      const result = runRetried<{ forward: string; debug: string[]; maxDiff: number; greedy: number[]; expected: number[] }>(
        "./webgpu-node.child.ts",
        [name],
      );
      assert.equal(result.forward, "GpuGemmaForward");
      assert.ok(
        result.debug.some((m) => m.startsWith("webgpu adapter: ")),
        result.debug.join("; "),
      );
      assert.ok(result.maxDiff <= 1e-2, `max |Δlogit| ${result.maxDiff}`);
      assert.deepEqual(result.greedy, result.expected);
    });
  }
});

/** A child script's JSON line, run in a fresh process up to four times: Dawn's crashes end a process, not the test run. */
function runRetried<T>(script: string, args: string[]): T {
  const crashes: string[] = [];
  for (let attempt = 0; attempt < 4; attempt++) {
    const child = spawnSync(process.execPath, ["--import", "tsx", new URL(script, import.meta.url).pathname, ...args], {
      encoding: "utf8",
      timeout: 240_000,
    });
    if (child.status === 0) return JSON.parse(child.stdout.trim().split("\n").at(-1)!) as T;
    crashes.push(`${child.signal ?? child.status}: ${child.stderr.slice(-300)}`);
  }
  assert.fail(`every attempt crashed:\n${crashes.join("\n")}`);
}
