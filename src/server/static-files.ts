/**
 * Files on disk as Web Responses, with the parts a model loader needs: HEAD, single byte ranges
 * (206 / 416), Content-Length and ETag, and no path escaping its root folder. Node adapter.
 */
import { createReadStream } from "node:fs";
import { realpath, stat } from "node:fs/promises";
import { extname, resolve, sep } from "node:path";
import { Readable } from "node:stream";

const TYPES: Readonly<Record<string, string>> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json",
  ".map": "application/json",
  ".wasm": "application/wasm",
  ".png": "image/png",
  ".svg": "image/svg+xml",
};

/** The file a URL path names inside root, or null when it would leave root or is malformed. */
export function pathInside(root: string, urlPath: string): string | null {
  let segments: string[];
  try {
    segments = urlPath
      .split("/")
      .filter((s) => s !== "")
      .map(decodeURIComponent);
  } catch {
    return null;
  }
  if (segments.some((s) => s === "." || s === ".." || s.includes("/") || s.includes("\\") || s.includes("\0"))) return null;
  const base = resolve(root);
  const full = resolve(base, ...segments);
  return full === base || full.startsWith(base + sep) ? full : null;
}

/**
 * Like `pathInside`, but also after following links: the file's real path must lie inside the
 * root's real path (a symlink in a models folder must not serve /etc/passwd). Null otherwise, and
 * for anything that does not exist.
 */
export async function realFileInside(root: string, urlPath: string): Promise<string | null> {
  const path = pathInside(root, urlPath);
  if (!path) return null;
  const [realRoot, real] = await Promise.all([realpath(root).catch(() => null), realpath(path).catch(() => null)]);
  if (!realRoot || !real) return path; // missing: fileResponse answers 404
  return real.startsWith(realRoot + sep) ? real : null;
}

/** A byte range request against a size: [start, end] inclusive, "unsatisfiable", or null for the whole file. */
export function parseRange(header: string | null | undefined, size: number): [number, number] | "unsatisfiable" | null {
  if (!header) return null;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  // Several ranges or another unit: answering with the whole file is allowed (RFC 9110 §14.2).
  if (!m || (m[1] === "" && m[2] === "")) return null;
  let start: number;
  let end: number;
  if (m[1] === "") {
    const suffix = Number(m[2]);
    if (suffix === 0) return "unsatisfiable";
    start = Math.max(0, size - suffix);
    end = size - 1;
  } else {
    start = Number(m[1]);
    end = m[2] === "" ? size - 1 : Math.min(Number(m[2]), size - 1);
  }
  return start > end || start >= size ? "unsatisfiable" : [start, end];
}

/** The file as a Response for a GET or HEAD request (404 when it is not a regular file). */
export async function fileResponse(path: string, request: Request, extraHeaders: Record<string, string> = {}): Promise<Response> {
  const info = await stat(path).catch(() => null);
  if (!info?.isFile()) return new Response("not found\n", { status: 404, headers: { "Content-Type": "text/plain", ...extraHeaders } });
  const size = info.size;
  const headers: Record<string, string> = {
    "Content-Type": TYPES[extname(path).toLowerCase()] ?? "application/octet-stream",
    "Accept-Ranges": "bytes",
    "Last-Modified": info.mtime.toUTCString(),
    ETag: `"${size.toString(16)}-${Math.floor(info.mtimeMs).toString(16)}"`,
    ...extraHeaders,
  };
  const range = parseRange(request.headers.get("Range"), size);
  if (range === "unsatisfiable") return new Response(null, { status: 416, headers: { ...headers, "Content-Range": `bytes */${size}` } });
  const [start, end] = range ?? [0, size - 1];
  const length = size === 0 ? 0 : end - start + 1;
  Object.assign(headers, { "Content-Length": String(length) }, range ? { "Content-Range": `bytes ${start}-${end}/${size}` } : {});
  const status = range ? 206 : 200;
  if (request.method === "HEAD" || length === 0) return new Response(null, { status, headers });
  const body = Readable.toWeb(createReadStream(path, { start, end, highWaterMark: 1 << 20 })) as unknown as ReadableStream<Uint8Array>;
  return new Response(body, { status, headers });
}
