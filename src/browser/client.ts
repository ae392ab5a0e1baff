/**
 * The page's side of the model worker: `load` resolves when the model is ready, `chat` streams a
 * reply and can be stopped. One request of each kind at a time, as the worker serves them.
 */
import type { CacheEntry } from "./opfs-cache.js";
import type { Backend, ModelInfo, ModelSource, ReplyStats, RuntimeEvent, RuntimeRequest, SamplingSettings } from "./protocol.js";

export interface Reply {
  /** Resolves with the whole text and its statistics when the reply ends (stopped included). */
  done: Promise<{ text: string; stats: ReplyStats }>;
  /** Stops the reply after the token being computed. */
  stop(): void;
}

type Pending<T> = { resolve(value: T): void; reject(error: Error): void };

export interface LoadCallbacks {
  onProgress?: (event: Extract<RuntimeEvent, { type: "progress" }>) => void;
  /** Messages about a load that goes on (a file too large for the browser's storage, say). */
  onNotice?: (message: string) => void;
}

export class GemmaWorkerClient {
  private nextId = 1;
  private loading: (Pending<ModelInfo> & LoadCallbacks) | null = null;
  private readonly replies = new Map<number, Pending<{ text: string; stats: ReplyStats }> & { onToken(text: string): void }>();
  private cacheRequest: Pending<{ entries: CacheEntry[]; freedBytes?: number }> | null = null;

  constructor(private readonly worker: Worker) {
    worker.onmessage = (e: MessageEvent<RuntimeEvent>) => this.receive(e.data);
    worker.onerror = (e) => this.failAll(new Error(`the model worker failed: ${e.message}`));
  }

  /** Starts the worker script (runtime-worker.js of the web build). */
  static start(workerUrl: URL | string): GemmaWorkerClient {
    return new GemmaWorkerClient(new Worker(workerUrl, { type: "module", name: "gemma-ts model" }));
  }

  load(source: ModelSource, options: LoadCallbacks & { threads?: number; backend?: Backend } = {}): Promise<ModelInfo> {
    this.loading?.reject(new Error("replaced by a newer load"));
    const { onProgress, onNotice } = options;
    return new Promise<ModelInfo>((resolve, reject) => {
      this.loading = { resolve, reject, onProgress, onNotice };
      this.post({
        type: "load",
        source,
        ...(options.threads ? { threads: options.threads } : {}),
        ...(options.backend ? { backend: options.backend } : {}),
      });
    });
  }

  chat(text: string, settings: SamplingSettings, onToken: (text: string) => void, system?: string): Reply {
    const id = this.nextId++;
    const done = new Promise<{ text: string; stats: ReplyStats }>((resolve, reject) => this.replies.set(id, { resolve, reject, onToken }));
    this.post({ type: "chat", id, text, settings, ...(system ? { system } : {}) });
    return { done, stop: () => this.post({ type: "abort", id }) };
  }

  /** Forgets the conversation (the next chat starts a new one). */
  reset(): void {
    this.post({ type: "reset" });
  }

  listCache(): Promise<{ entries: CacheEntry[]; freedBytes?: number }> {
    return this.cacheCall({ type: "cache-list" });
  }

  clearCache(): Promise<{ entries: CacheEntry[]; freedBytes?: number }> {
    return this.cacheCall({ type: "cache-clear" });
  }

  terminate(): void {
    this.worker.terminate();
    this.failAll(new Error("the model worker was stopped"));
  }

  private cacheCall(request: RuntimeRequest): Promise<{ entries: CacheEntry[]; freedBytes?: number }> {
    this.cacheRequest?.reject(new Error("replaced by a newer cache request"));
    return new Promise((resolve, reject) => {
      this.cacheRequest = { resolve, reject };
      this.post(request);
    });
  }

  private post(request: RuntimeRequest): void {
    this.worker.postMessage(request);
  }

  private receive(event: RuntimeEvent): void {
    switch (event.type) {
      case "progress":
        this.loading?.onProgress?.(event);
        return;
      case "notice":
        this.loading?.onNotice?.(event.message);
        return;
      case "loaded":
        this.loading?.resolve(event.info);
        this.loading = null;
        return;
      case "load-error":
        this.loading?.reject(new Error(event.message));
        this.loading = null;
        return;
      case "token":
        this.replies.get(event.id)?.onToken(event.text);
        return;
      case "done":
        this.replies.get(event.id)?.resolve({ text: event.text, stats: event.stats });
        this.replies.delete(event.id);
        return;
      case "chat-error":
        this.replies.get(event.id)?.reject(new Error(event.message));
        this.replies.delete(event.id);
        return;
      case "cache":
        this.cacheRequest?.resolve(
          event.freedBytes === undefined ? { entries: event.entries } : { entries: event.entries, freedBytes: event.freedBytes },
        );
        this.cacheRequest = null;
        return;
      case "cache-error":
        this.cacheRequest?.reject(new Error(event.message));
        this.cacheRequest = null;
    }
  }

  private failAll(error: Error): void {
    this.loading?.reject(error);
    this.loading = null;
    for (const reply of this.replies.values()) reply.reject(error);
    this.replies.clear();
    this.cacheRequest?.reject(error);
    this.cacheRequest = null;
  }
}
