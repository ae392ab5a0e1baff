/**
 * The messages between a page and the model's worker (runtime-worker.ts). The page never runs the
 * model: it sends requests and receives events, so it stays responsive while a forward pass runs.
 */
import type { FinishReason } from "../generate/generation.js";
import type { ResponseFormat } from "../generate/response-format.js";
import type { CacheEntry } from "./opfs-cache.js";

/** Where the model comes from: a URL (GGUF file or folder base), or files the user picked. */
export type ModelSource =
  /** `hubToken`: a Hugging Face token for gated models, sent only to the Hub (model-address.ts). */
  { kind: "url"; url: string; cache: boolean; hubToken?: string } | { kind: "files"; files: File[] };

export interface SamplingSettings {
  maxTokens: number;
  /** 0 = greedy. */
  temperature: number;
  /** 0 = off. */
  topK: number;
  /** 1 = off. */
  topP: number;
  /** Same seed, same reply (as `gemma-ts generate --seed`); absent = random. */
  seed?: number;
  /** The reply's form (JSON Schema, any JSON object, EBNF grammar), as in GenerateOptions; absent = free text. */
  responseFormat?: ResponseFormat;
}

export type RuntimeRequest =
  /** `backend`: "auto" (WebGPU where the model runs there, else WebAssembly), or one forced. */
  | { type: "load"; source: ModelSource; threads?: number; backend?: Backend }
  /** A user turn of the current conversation; the reply streams as "token" events with this id. */
  | { type: "chat"; id: number; text: string; system?: string; settings: SamplingSettings }
  | { type: "abort"; id: number }
  /** Starts a new conversation (drops the history and its KV cache). */
  | { type: "reset" }
  | { type: "cache-list" }
  | { type: "cache-clear" };

export type Backend = "auto" | "webgpu" | "wasm";

export interface ModelInfo {
  name: string;
  family: string;
  layers: number;
  dModel: number;
  vocabSize: number;
  contextLength: number;
  weightBytes: number;
  /** The kernels in use, e.g. "wasm×4", "wasm", "js" or "webgpu". */
  kernels: string;
  /** Where the model runs: "webgpu (adapter)" or "wasm"; with why not WebGPU when it was wanted. */
  backend: string;
  backendNote: string | null;
  threads: number;
  /** Whether the page is cross-origin isolated (needed for more than one thread). */
  crossOriginIsolated: boolean;
  /** True when every file came from the browser's cache. */
  fromCache: boolean;
  loadSeconds: number;
}

export interface ReplyStats {
  promptTokens: number;
  completionTokens: number;
  /** Decode speed: tokens after the first over the time after the first. */
  tokensPerSecond: number;
  /** Seconds to the first token (prefill included). */
  firstTokenSeconds: number;
  finishReason: FinishReason | null;
}

export type RuntimeEvent =
  | { type: "progress"; phase: "download" | "weights"; loaded: number; total: number; file?: string }
  /** Something the user should know about a load that still goes on (a file not cached, say). */
  | { type: "notice"; message: string }
  | { type: "loaded"; info: ModelInfo }
  | { type: "load-error"; message: string }
  | { type: "token"; id: number; text: string }
  | { type: "done"; id: number; text: string; stats: ReplyStats }
  | { type: "chat-error"; id: number; message: string }
  | { type: "cache"; entries: CacheEntry[]; freedBytes?: number }
  | { type: "cache-error"; message: string };
