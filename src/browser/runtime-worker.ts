/**
 * The model's worker: loads a checkpoint (URL or picked files) onto the WebAssembly kernels, keeps
 * one chat conversation with its KV cache, streams replies and stops them on request. The page
 * talks to it only through protocol.ts (client.ts wraps it).
 */
import { jsKernels } from "../backend/js/index.js";
import type { Kernels } from "../backend/kernels.js";
import { createWasmKernels } from "../backend/wasm/index.js";
import type { ChatSession } from "../generate/chat-session.js";
import type { GemmaModel } from "../gemma-model.js";
import { loadModelFromFiles } from "./load.js";
import { HUB_ENDPOINT } from "./model-address.js";
import { pickedFiles, urlFiles } from "./model-files.js";
import { ModelCache } from "./opfs-cache.js";
import type { Backend, ModelInfo, ModelSource, RuntimeEvent, RuntimeRequest, SamplingSettings } from "./protocol.js";
import { loadModelOnWebGpu } from "./webgpu-model.js";
import { browserWasmHost } from "./wasm-host.js";

const host = browserWasmHost({ wasmBase: new URL("./", import.meta.url), kernelWorker: new URL("./kernel-worker.js", import.meta.url) });
const send = (event: RuntimeEvent) => self.postMessage(event);
const message = (e: unknown) => (e instanceof Error ? e.message : String(e));

let model: GemmaModel | null = null;
let session: ChatSession | null = null;
let running: { id: number; controller: AbortController } | null = null;
/** The loaded model's kernels: their worker threads are stopped when another model loads. */
let kernelsInUse: Kernels | null = null;

/** Fresh kernels per model (weights live in their arenas); the TypeScript ones if wasm fails. */
async function createKernels(threads: number): Promise<Kernels> {
  try {
    return await createWasmKernels({ host, threads });
  } catch (e) {
    console.warn(`gemma-ts: WebAssembly kernels unavailable (${message(e)}); using the TypeScript kernels`);
    return jsKernels;
  }
}

async function load(source: ModelSource, threadsWanted?: number, backend: Backend = "auto"): Promise<void> {
  running?.controller.abort();
  model = null;
  session = null;
  await kernelsInUse?.release?.();
  kernelsInUse = null;
  const started = performance.now();
  const cache = source.kind === "url" && source.cache ? await ModelCache.open() : null;
  let downloaded = false;
  const files =
    source.kind === "files"
      ? pickedFiles(source.files)
      : urlFiles(source.url, {
          cache,
          ...(source.hubToken ? { authorization: { origin: new URL(HUB_ENDPOINT).origin, token: source.hubToken } } : {}),
          onDownload: (file, loaded, total) => {
            downloaded = true;
            send({ type: "progress", phase: "download", file, loaded, total });
          },
          onCacheSkipped: (file, reason) => {
            downloaded = true;
            send({ type: "notice", message: `${file} is not kept in this browser (${reason}); it is read from the network instead` });
          },
        });
  const onProgress = (done: number, total: number) => send({ type: "progress", phase: "weights", loaded: done, total });
  // WebGPU first where wanted and where the model runs there; WebAssembly otherwise.
  let backendNote: string | null = null;
  if (backend !== "wasm") {
    const gpu = (navigator as Navigator & { gpu?: GPU }).gpu;
    const onGpu = gpu
      ? await loadModelOnWebGpu(files, gpu, { onProgress, softwareAdapter: backend === "webgpu" }).catch((e: unknown) => ({
          model: null,
          reason: message(e),
        }))
      : null;
    if (onGpu?.model) {
      model = onGpu.model;
      session = null;
      send({
        type: "loaded",
        info: modelInfo(files.name, onGpu.model, "webgpu", 1, `webgpu (${onGpu.adapter})`, null, started, cache !== null && !downloaded),
      });
      return;
    }
    backendNote = onGpu ? onGpu.reason : "this browser has no WebGPU";
    if (backend === "webgpu") throw new Error(`cannot run on WebGPU: ${backendNote}`);
  }
  const threads = host.canShareMemory() ? Math.max(1, threadsWanted ?? host.cores()) : 1;
  const kernels = await createKernels(threads);
  kernelsInUse = kernels;
  let loaded: GemmaModel;
  try {
    loaded = await loadModelFromFiles(files, kernels, { onProgress });
  } catch (e) {
    // A copy that does not load is not worth keeping: the next try downloads it again.
    await cache?.forget(files.name).catch(() => {});
    throw e;
  }
  model = loaded;
  session = null;
  const threadsUsed = kernels === jsKernels ? 1 : threads;
  send({
    type: "loaded",
    info: modelInfo(files.name, loaded, kernels.name, threadsUsed, "wasm", backendNote, started, cache !== null && !downloaded),
  });
}

function modelInfo(
  name: string,
  loaded: GemmaModel,
  kernels: string,
  threads: number,
  backend: string,
  backendNote: string | null,
  started: number,
  fromCache: boolean,
): ModelInfo {
  const { config } = loaded;
  return {
    name,
    family: config.family,
    layers: config.nLayers,
    dModel: config.dModel,
    vocabSize: config.vocabSize,
    contextLength: config.maxPositions,
    weightBytes: loaded.weightBytes,
    kernels,
    threads,
    backend,
    backendNote,
    crossOriginIsolated: globalThis.crossOriginIsolated === true,
    fromCache,
    loadSeconds: (performance.now() - started) / 1000,
  };
}

async function chat(id: number, text: string, settings: SamplingSettings, system?: string): Promise<void> {
  if (!model) throw new Error("no model is loaded");
  if (running) throw new Error("a reply is still being generated; stop it first");
  session ??= model.chat(system ? { system } : {});
  const controller = new AbortController();
  running = { id, controller };
  try {
    const { maxTokens, temperature, topK, topP, seed, responseFormat } = settings;
    const generation = session.send(text, {
      maxTokens,
      temperature,
      topK,
      topP,
      ...(seed === undefined ? {} : { seed }),
      ...(responseFormat === undefined ? {} : { responseFormat }),
      signal: controller.signal,
    });
    const started = performance.now();
    let firstAt = 0;
    for await (const token of generation) {
      firstAt ||= performance.now();
      send({ type: "token", id, text: token.text });
    }
    const ended = performance.now();
    const decoded = generation.completionTokens - 1;
    send({
      type: "done",
      id,
      text: generation.text,
      stats: {
        promptTokens: generation.promptTokens,
        completionTokens: generation.completionTokens,
        tokensPerSecond: decoded > 0 && ended > firstAt ? decoded / ((ended - firstAt) / 1000) : 0,
        firstTokenSeconds: ((firstAt || ended) - started) / 1000,
        finishReason: generation.finishReason,
      },
    });
  } finally {
    running = null;
  }
}

async function handle(request: RuntimeRequest): Promise<void> {
  switch (request.type) {
    case "load":
      return load(request.source, request.threads, request.backend).catch((e: unknown) =>
        send({ type: "load-error", message: message(e) }),
      );
    case "chat":
      return chat(request.id, request.text, request.settings, request.system).catch((e: unknown) =>
        send({ type: "chat-error", id: request.id, message: message(e) }),
      );
    case "abort":
      if (running?.id === request.id) running.controller.abort();
      return;
    case "reset":
      running?.controller.abort();
      session = null;
      return;
    case "cache-list":
    case "cache-clear": {
      try {
        const cache = await ModelCache.open();
        if (!cache) throw new Error("this browser has no Origin Private File System, so nothing is cached");
        const freedBytes = request.type === "cache-clear" ? await cache.clear() : undefined;
        send({ type: "cache", entries: await cache.list(), ...(freedBytes === undefined ? {} : { freedBytes }) });
      } catch (e) {
        send({ type: "cache-error", message: message(e) });
      }
    }
  }
}

self.onmessage = (event: MessageEvent<RuntimeRequest>) => void handle(event.data);
