/**
 * Models fetched from a URL, kept in the browser's Origin Private File System so a reload reads
 * them from disk instead of the network. Each URL is two entries in one folder: `<sha256>.bin`
 * (the bytes) and `<sha256>.json` (url, size, ETag), written last, so an interrupted download is
 * never taken for a complete one. A copy whose server ETag has changed is not used.
 */
import { fetchOrExplain } from "./http-source.js";

export interface CacheEntry {
  url: string;
  size: number;
  savedAt: string;
  /** The server's ETag when it was saved: a different one now means the copy is stale. */
  etag?: string;
}

/** Bytes so far and in total (0 when the server sends no Content-Length). */
export type DownloadProgress = (loaded: number, total: number) => void;

/** Only dedicated workers have synchronous access handles (the fast way to write big files). */
interface SyncAccessHandle {
  write(buffer: Uint8Array, options: { at: number }): number;
  flush(): void;
  close(): void;
}
type SyncCapableHandle = FileSystemFileHandle & { createSyncAccessHandle?: () => Promise<SyncAccessHandle> };
/** `keys()` is in the DOM.AsyncIterable lib, which this Node-first project does not load. */
type ListableDirectory = FileSystemDirectoryHandle & { keys(): AsyncIterable<string> };

const FOLDER = "gemma-ts-models";

/** The browser's storage quota cannot hold a file: callers read it from the network instead. */
export class CacheQuotaError extends Error {
  override name = "CacheQuotaError";
}

const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(0)} MiB`;

export class ModelCache {
  private constructor(private readonly dir: ListableDirectory) {}

  /** The cache, or null where this browser context has no Origin Private File System. */
  static async open(): Promise<ModelCache | null> {
    const storage = typeof navigator === "object" ? navigator.storage : undefined;
    if (!storage?.getDirectory) return null;
    try {
      const root = await storage.getDirectory();
      return new ModelCache((await root.getDirectoryHandle(FOLDER, { create: true })) as ListableDirectory);
    } catch {
      return null;
    }
  }

  /**
   * The cached file for a URL, or null when there is none or the server now has another version
   * (its ETag changed). When the server cannot be asked (offline), the copy is used as it is.
   */
  async get(url: string, headers: Readonly<Record<string, string>> = {}): Promise<File | null> {
    const key = await keyOf(url);
    const meta = await this.readMeta(key);
    if (!meta || meta.url !== url) return null;
    const file = await this.storedFile(key, meta.size);
    if (!file) return null;
    if (meta.etag !== undefined) {
      const current = await fetch(url, { method: "HEAD", headers, cache: "no-store" }).then(
        (r) => (r.ok ? r.headers.get("ETag") : null),
        () => null,
      );
      if (current !== null && current !== meta.etag) return null;
    }
    return file;
  }

  /** Deletes the entries of every URL that starts with `prefix` (a model's file or folder address). */
  async forget(prefix: string): Promise<void> {
    for (const entry of await this.list()) if (entry.url.startsWith(prefix)) await this.remove(await keyOf(entry.url));
  }

  /** Downloads a URL into the cache (streamed to disk, never whole in memory) and returns the file. */
  async download(url: string, onProgress?: DownloadProgress, headers: Readonly<Record<string, string>> = {}): Promise<File> {
    const key = await keyOf(url);
    await this.remove(key);
    // no-store: the copy goes to the Origin Private File System, not a second one to the HTTP cache.
    const response = await fetchOrExplain(url, { headers, cache: "no-store" });
    const total = Number(response.headers.get("Content-Length") ?? 0);
    const { quota, usage = 0 } = await navigator.storage.estimate();
    if (quota !== undefined && total > quota - usage) {
      await response.body?.cancel();
      throw new CacheQuotaError(
        `${url}: the browser lets this page store ${mib(Math.max(0, quota - usage))} more, the file has ${mib(total)}`,
      );
    }
    const handle = (await this.dir.getFileHandle(`${key}.bin`, { create: true })) as SyncCapableHandle;
    let loaded = 0;
    try {
      const write = await openWriter(handle);
      try {
        const reader = response.body!.getReader();
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          await write.chunk(value, loaded);
          loaded += value.length;
          onProgress?.(loaded, total);
        }
      } finally {
        await write.close();
      }
      // Fewer bytes than announced is a cut download (a compressed body may decode to more).
      if (loaded < total) throw new Error(`${url}: the download ended after ${loaded} of ${total} bytes`);
      const etag = response.headers.get("ETag");
      const meta: CacheEntry = { url, size: loaded, savedAt: new Date().toISOString(), ...(etag ? { etag } : {}) };
      await writeText(await this.dir.getFileHandle(`${key}.json`, { create: true }), JSON.stringify(meta));
    } catch (e) {
      await this.remove(key);
      if (e instanceof DOMException && e.name === "QuotaExceededError")
        throw new CacheQuotaError(`${url}: the browser's storage quota ran out after ${mib(loaded)}`);
      throw e;
    }
    const file = await this.storedFile(key, loaded);
    if (!file) throw new Error(`${url}: the downloaded copy could not be read back from the browser's storage`);
    return file;
  }

  /** The `.bin` of an entry if it is there with the size its entry records. */
  private async storedFile(key: string, size: number): Promise<File | null> {
    const file = await this.dir
      .getFileHandle(`${key}.bin`)
      .then((h) => h.getFile())
      .catch(() => null);
    return file && file.size === size ? file : null;
  }

  async list(): Promise<CacheEntry[]> {
    const entries: CacheEntry[] = [];
    for await (const name of this.dir.keys()) {
      if (!name.endsWith(".json")) continue;
      const meta = await this.readMeta(name.slice(0, -".json".length));
      if (meta) entries.push(meta);
    }
    return entries.sort((a, b) => a.url.localeCompare(b.url));
  }

  /** Deletes every cached model; returns the bytes freed. */
  async clear(): Promise<number> {
    let freed = 0;
    const names: string[] = [];
    for await (const name of this.dir.keys()) names.push(name);
    for (const name of names) {
      if (name.endsWith(".bin")) freed += (await (await this.dir.getFileHandle(name)).getFile()).size;
      await this.dir.removeEntry(name);
    }
    return freed;
  }

  private async readMeta(key: string): Promise<CacheEntry | null> {
    try {
      const text = await (await (await this.dir.getFileHandle(`${key}.json`)).getFile()).text();
      const meta = JSON.parse(text) as Partial<CacheEntry>;
      if (typeof meta.url !== "string" || typeof meta.size !== "number") return null;
      return {
        url: meta.url,
        size: meta.size,
        savedAt: String(meta.savedAt ?? ""),
        ...(typeof meta.etag === "string" ? { etag: meta.etag } : {}),
      };
    } catch {
      return null;
    }
  }

  private async remove(key: string): Promise<void> {
    for (const name of [`${key}.json`, `${key}.bin`]) await this.dir.removeEntry(name).catch(() => {});
  }
}

async function keyOf(url: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(url));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** A writer on the fastest API the context has: a sync access handle (workers) or a writable stream. */
async function openWriter(
  handle: SyncCapableHandle,
): Promise<{ chunk(bytes: Uint8Array, at: number): Promise<void>; close(): Promise<void> }> {
  if (handle.createSyncAccessHandle) {
    const sync = await handle.createSyncAccessHandle();
    return {
      chunk: async (bytes, at) => void sync.write(bytes, { at }),
      close: async () => {
        sync.flush();
        sync.close();
      },
    };
  }
  const stream = await handle.createWritable();
  return { chunk: (bytes) => stream.write(bytes as Uint8Array<ArrayBuffer>), close: () => stream.close() };
}

async function writeText(handle: SyncCapableHandle, text: string): Promise<void> {
  const writer = await openWriter(handle);
  await writer.chunk(new TextEncoder().encode(text), 0);
  await writer.close();
}
