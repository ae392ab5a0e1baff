/**
 * Runs in the page (bundled by webgpu-forward.test.ts): fixtures fetched from the test server, loaded
 * onto WebGPU, their logits and greedy tokens compared with the reference's.
 */
import { pickedFiles, type ModelFiles } from "../../src/browser/model-files.js";
import { loadModelOnWebGpu } from "../../src/browser/webgpu-model.js";
import type { GpuGemmaForward } from "../../src/model/gemma/gpu-forward.js";
import { GPU_FIXTURES, GPU_GREEDY_TOKENS, SPLIT_FIXTURES, SPLIT_GREEDY_TOKENS, SPLIT_PREFIX } from "./webgpu-fixtures.js";

interface Fixture {
  input_ids: number[];
  logits: number[][];
  greedy: { prompt_ids?: number[]; generated_ids: number[] };
}

export interface FixtureResult {
  name: string;
  /** For quantized GGUF files: the GPU's logits of the fixture's input ids, compared in Node. */
  logits?: number[];
  adapter?: string;
  maxDiff?: number;
  greedy?: number[];
  expectedGreedy?: number[];
  /** The error a reply gets once the device is gone. */
  afterLoss?: string;
  /** Loaded again with every matrix split into small buffers and prompts run 3 tokens per pass. */
  split?: { weightBuffers: number; unsplitBuffers: number; passes: number; maxDiff: number; maxDiffToWhole: number; greedy: number[] };
  reason?: string;
}

async function fixture(name: string): Promise<FixtureResult> {
  const file = async (f: string) => new File([await (await fetch(`/models/${name}/${f}`)).blob()], f);
  const fx = (await (await fetch(`/models/${name}/fixture.json`)).json()) as Fixture;
  const files = pickedFiles([await file("config.json"), await file("model.safetensors")]);
  // SwiftShader is a software adapter: used only when asked for by name.
  const loaded = await loadModelOnWebGpu(files, (navigator as Navigator & { gpu: GPU }).gpu, { softwareAdapter: true });
  if (!loaded.model) return { name, reason: loaded.reason };
  const logits = await loaded.model.logits(fx.input_ids);
  const expected = fx.logits.flat();
  let maxDiff = 0;
  for (let i = 0; i < expected.length; i++) maxDiff = Math.max(maxDiff, Math.abs(logits[i]! - expected[i]!));
  const greedy: number[] = [];
  const prompt = fx.greedy.prompt_ids ?? fx.input_ids;
  for await (const t of loaded.model.generate(prompt, { temperature: 0, maxTokens: GPU_GREEDY_TOKENS })) greedy.push(t.id);
  const split = (SPLIT_FIXTURES as readonly string[]).includes(name)
    ? await splitAndChunked(name, files, fx, logits, loaded.model.forwardPass as GpuGemmaForward)
    : undefined;
  // A lost device (here: destroyed) ends the next reply with an error, not a hang or garbage.
  (loaded.model.forwardPass as GpuGemmaForward).device.destroy();
  const afterLoss = await loaded.model
    .generate(fx.input_ids.slice(0, 4), { temperature: 0, maxTokens: 2 })
    .complete()
    .then(
      () => "no error",
      (e: unknown) => (e as Error).message,
    );
  const expectedGreedy = fx.greedy.generated_ids.slice(0, GPU_GREEDY_TOKENS);
  return { name, adapter: loaded.adapter, maxDiff, greedy, expectedGreedy, afterLoss, split };
}

/**
 * The same model with matrices split into buffers of at most 4 KiB (8 KiB for the experts' fixture)
 * and prompts in passes of 3 tokens: a prefix's logits (a causal model's rows for a prefix are the
 * full prompt's first rows), then greedy tokens through a cache filled pass by pass.
 */
async function splitAndChunked(
  name: string,
  files: ModelFiles,
  fx: Fixture,
  whole: Float32Array,
  unsplit: GpuGemmaForward,
): Promise<FixtureResult["split"]> {
  const gpu = (navigator as Navigator & { gpu: GPU }).gpu;
  // One expert of the MoE fixture is 8 KiB: its buffers hold one expert each.
  const maxBindingBytes = name === "hf_gemma4_moe" ? 8192 : 4096;
  const loaded = await loadModelOnWebGpu(files, gpu, { softwareAdapter: true, maxBindingBytes, promptChunk: 3 });
  if (!loaded.model) throw new Error(`split load refused: ${loaded.reason}`);
  const forward = loaded.model.forwardPass as GpuGemmaForward;
  const queue = forward.device.queue;
  let passes = 0;
  const submit = queue.submit.bind(queue);
  queue.submit = (buffers: Iterable<GPUCommandBuffer>) => {
    passes++;
    submit(buffers);
  };
  const logits = await loaded.model!.logits(fx.input_ids.slice(0, SPLIT_PREFIX));
  queue.submit = submit;
  const expected = fx.logits.slice(0, SPLIT_PREFIX).flat();
  let maxDiff = 0;
  let maxDiffToWhole = 0;
  for (let i = 0; i < expected.length; i++) {
    maxDiff = Math.max(maxDiff, Math.abs(logits[i]! - expected[i]!));
    maxDiffToWhole = Math.max(maxDiffToWhole, Math.abs(logits[i]! - whole[i]!));
  }
  const greedy: number[] = [];
  const prompt = fx.greedy.prompt_ids ?? fx.input_ids;
  for await (const t of loaded.model!.generate(prompt, { temperature: 0, maxTokens: SPLIT_GREEDY_TOKENS })) greedy.push(t.id);
  forward.device.destroy();
  return { weightBuffers: forward.weightBuffers(), unsplitBuffers: unsplit.weightBuffers(), passes, maxDiff, maxDiffToWhole, greedy };
}

/** A quantized GGUF of a fixture: its logits, for Node to compare with the WebAssembly backend's. */
async function quantized(name: string, fixtureName: string): Promise<FixtureResult> {
  const file = new File([await (await fetch(`/models/${name}`)).blob()], name);
  const fx = (await (await fetch(`/models/${fixtureName}/fixture.json`)).json()) as Fixture;
  const loaded = await loadModelOnWebGpu(pickedFiles([file]), (navigator as Navigator & { gpu: GPU }).gpu, { softwareAdapter: true });
  if (!loaded.model) return { name, reason: loaded.reason };
  return { name, logits: Array.from(await loaded.model.logits(fx.input_ids)) };
}

/** A device that rejects a shader: the forward pass fails with the device's message instead of returning stale numbers. */
async function rejectedShader(): Promise<FixtureResult> {
  const file = async (f: string) => new File([await (await fetch(`/models/tiny_a/${f}`)).blob()], f);
  const files = pickedFiles([await file("config.json"), await file("model.safetensors")]);
  const loaded = await loadModelOnWebGpu(files, (navigator as Navigator & { gpu: GPU }).gpu, { softwareAdapter: true });
  const device = (loaded.model!.forwardPass as GpuGemmaForward).device;
  const create = device.createShaderModule.bind(device);
  device.createShaderModule = () => create({ code: "fn broken(" });
  const reason = await loaded.model!.logits([2, 5, 7]).then(
    () => "no error",
    (e: unknown) => (e as Error).message,
  );
  device.destroy();
  return { name: "rejected-shader", reason };
}

/** A binding limit smaller than one row of the model's matrices: refused with the reason, for the page to fall back. */
async function overLimit(): Promise<FixtureResult> {
  const file = async (f: string) => new File([await (await fetch(`/models/hf_gemma3/${f}`)).blob()], f);
  const files = pickedFiles([await file("config.json"), await file("model.safetensors")]);
  const gpu = (navigator as Navigator & { gpu: GPU }).gpu;
  const loaded = await loadModelOnWebGpu(files, gpu, { softwareAdapter: true, maxBindingBytes: 64 });
  return { name: "over-limit", reason: loaded.model ? undefined : loaded.reason };
}

/** Options that make no sense are refused with their name, not run (a zero chunk would never end a prompt). */
async function badOptions(): Promise<FixtureResult[]> {
  const file = async (f: string) => new File([await (await fetch(`/models/tiny_a/${f}`)).blob()], f);
  const gpu = (navigator as Navigator & { gpu: GPU }).gpu;
  const results: FixtureResult[] = [];
  for (const [name, options] of [
    ["prompt-chunk-0", { promptChunk: 0 }],
    ["binding-bytes-nan", { maxBindingBytes: Number.NaN }],
  ] as const) {
    const files = pickedFiles([await file("config.json"), await file("model.safetensors")]);
    const loaded = await loadModelOnWebGpu(files, gpu, { softwareAdapter: true, ...options });
    results.push({ name, reason: loaded.model ? undefined : loaded.reason });
  }
  return results;
}

(window as unknown as { gpuForward: Promise<FixtureResult[] | string> }).gpuForward = (async () => {
  const results: FixtureResult[] = [];
  for (const name of GPU_FIXTURES) results.push(await fixture(name));
  for (const name of ["hf_gemma3-q8_0.gguf", "hf_gemma3-q4_0.gguf"]) results.push(await quantized(name, "hf_gemma3"));
  results.push(await overLimit());
  results.push(...(await badOptions()));
  results.push(await rejectedShader());
  return results;
})().catch((e) => `error: ${(e as Error).stack ?? e}`);
