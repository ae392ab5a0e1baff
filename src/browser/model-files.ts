/**
 * The files of a checkpoint wherever a browser finds them: Files the user picked (a GGUF file or
 * a Hugging Face folder), or URLs under one base address, each read from the Origin Private File
 * System cache, downloaded into it, or read by range requests when there is no cache.
 */
import type { ByteSource } from "../weights/byte-source.js";
import { BlobSource } from "./blob-source.js";
import { fetchOrExplain, HttpRangeSource, HttpStatusError } from "./http-source.js";
import { CacheQuotaError, type DownloadProgress, type ModelCache } from "./opfs-cache.js";

export interface ModelFiles {
  /** The folder or URL, for messages. */
  readonly name: string;
  /** The GGUF file to load, when the checkpoint is one (else a Hugging Face folder). */
  readonly gguf: string | null;
  /** A small file's text, or null when the checkpoint has no such file. */
  text(file: string): Promise<string | null>;
  source(file: string): Promise<ByteSource>;
  /** The file's bytes, or null when the checkpoint has no such file. */
  optionalSource(file: string): Promise<ByteSource | null>;
}

/** Null for a 404 (an optional file that is not there); other failures stay errors. */
async function unlessMissing<T>(read: () => Promise<T>): Promise<T | null> {
  try {
    return await read();
  } catch (e) {
    if (e instanceof HttpStatusError && e.status === 404) return null;
    throw e;
  }
}

/** Picked files: one .gguf, or a folder (`webkitdirectory`) holding config.json or a .gguf. */
export function pickedFiles(files: readonly File[]): ModelFiles {
  const byName = new Map<string, File>();
  // A folder's files arrive with their relative paths; the shallowest file of each name wins.
  const depth = (f: File) => (f.webkitRelativePath || f.name).split("/").length;
  for (const f of [...files].sort((a, b) => depth(a) - depth(b))) if (!byName.has(f.name)) byName.set(f.name, f);
  const folder = files[0]?.webkitRelativePath ? files[0].webkitRelativePath.split("/")[0]! : null;
  const name = folder ?? files[0]?.name ?? "(no files)";
  const ggufs = [...byName.keys()].filter((n) => n.endsWith(".gguf") && n !== "tokenizer.gguf");
  const gguf = byName.has("config.json") ? null : (ggufs[0] ?? null);
  const file = (n: string) => {
    const f = byName.get(n);
    if (!f) throw new Error(`${name}: no ${n} among the picked files`);
    return f;
  };
  const blob = (n: string) => new BlobSource(file(n), folder ? `${folder}/${n}` : n);
  return {
    name,
    gguf,
    text: async (n) => (byName.has(n) ? file(n).text() : null),
    source: async (n) => blob(n),
    optionalSource: async (n) => (byName.has(n) ? blob(n) : null),
  };
}

export interface UrlFilesOptions {
  /** Keep downloads in this cache (null: read by range requests, keep nothing). */
  cache: ModelCache | null;
  onDownload?: (file: string, ...progress: Parameters<DownloadProgress>) => void;
  /** A file too large for the browser's storage quota is read by range requests instead; this says so. */
  onCacheSkipped?: (file: string, reason: string) => void;
  /** Called for each file read from the cache instead of the network. */
  onCacheHit?: (url: string) => void;
  /** A bearer token sent only to this origin (the Hub's, for gated models), never elsewhere. */
  authorization?: { origin: string; token: string };
}

/** A GGUF file's URL, or a folder's base URL (config.json, tokenizer.json and weights beneath it). */
export function urlFiles(address: string, options: UrlFilesOptions): ModelFiles {
  const url = new URL(address);
  const isGguf = url.pathname.endsWith(".gguf");
  const base = isGguf ? new URL(".", url) : new URL(url.pathname.endsWith("/") ? url.href : `${url.href}/`);
  const gguf = isGguf ? decodeURIComponent(url.pathname.split("/").pop()!) : null;
  const at = (file: string) => (file === gguf ? url.href : new URL(encodeURIComponent(file), base).href);
  const { cache, authorization } = options;
  const headersFor = (href: string): Record<string, string> =>
    authorization && new URL(href).origin === authorization.origin ? { Authorization: `Bearer ${authorization.token}` } : {};

  /** The cached copy (downloading it first), or null when the quota cannot hold it. */
  const cachedOrDownloaded = async (file: string): Promise<File | null> => {
    const href = at(file);
    const hit = await cache!.get(href, headersFor(href));
    if (hit) {
      options.onCacheHit?.(href);
      return hit;
    }
    try {
      return await cache!.download(href, (loaded, total) => options.onDownload?.(file, loaded, total), headersFor(href));
    } catch (e) {
      if (!(e instanceof CacheQuotaError)) throw e;
      options.onCacheSkipped?.(file, e.message);
      return null;
    }
  };

  const source = async (file: string): Promise<ByteSource> => {
    const cached = cache ? await cachedOrDownloaded(file) : null;
    return cached ? new BlobSource(cached, at(file)) : HttpRangeSource.open(at(file), headersFor(at(file)));
  };

  return {
    name: isGguf ? url.href : base.href,
    gguf,
    text: (file) =>
      unlessMissing(async () => {
        const cached = cache ? await cachedOrDownloaded(file) : null;
        return (cached ?? (await fetchOrExplain(at(file), { headers: headersFor(at(file)) }))).text();
      }),
    source,
    optionalSource: (file) => unlessMissing(() => source(file)),
  };
}
