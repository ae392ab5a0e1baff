/**
 * A ByteSource over HTTP range requests, for a model read from a URL without keeping a copy (no
 * Origin Private File System, or caching turned off). The server must answer `Range` with 206.
 */
import { CheckpointError } from "../errors.js";
import type { ByteSource } from "../weights/byte-source.js";

export class HttpRangeSource implements ByteSource {
  private constructor(
    readonly name: string,
    readonly size: number,
    /** Sent with every request (an Authorization header for the Hub, say). */
    private readonly headers: Readonly<Record<string, string>>,
  ) {}

  /** Learns the size from a one-byte range request (HEAD is not always allowed cross-origin). */
  static async open(url: string, headers: Readonly<Record<string, string>> = {}): Promise<HttpRangeSource> {
    const response = await fetchOrExplain(url, { headers: { ...headers, Range: "bytes=0-0" }, cache: "no-store" });
    await response.body?.cancel();
    const total = /\/(\d+)$/.exec(response.headers.get("Content-Range") ?? "")?.[1];
    if (response.status !== 206) {
      throw new CheckpointError(
        `${url}: the server does not answer range requests (status ${response.status}); turn on caching to download the whole file`,
        url,
      );
    }
    if (total === undefined) {
      // Another origin must list Content-Range in Access-Control-Expose-Headers for a page to see it.
      throw new CheckpointError(
        `${url}: the server answers range requests but shows this page no Content-Range header (CORS); turn on caching to download the ` +
          `whole file`,
        url,
      );
    }
    return new HttpRangeSource(url, Number(total), headers);
  }

  async read(offset: number, length: number, into?: Uint8Array): Promise<Uint8Array> {
    if (offset < 0 || length < 0 || offset + length > this.size) {
      throw new Error(`${this.name}: cannot read ${length} bytes at byte ${offset}; the file has ${this.size}`);
    }
    if (length === 0) return into ?? new Uint8Array(0);
    // no-store: gigabytes of weights must not also be written to the browser's HTTP cache.
    const response = await fetchOrExplain(this.name, {
      headers: { ...this.headers, Range: `bytes=${offset}-${offset + length - 1}` },
      cache: "no-store",
    });
    const bytes = new Uint8Array(await response.arrayBuffer());
    if (response.status !== 206 || bytes.length !== length) {
      throw new CheckpointError(
        `${this.name}: asked for ${length} bytes at ${offset}, got ${bytes.length} (status ${response.status})`,
        this.name,
      );
    }
    // The response's own buffer is the result unless the caller gave one: no second copy.
    if (!into) return bytes;
    into.set(bytes);
    return into;
  }

  async close(): Promise<void> {
    // Each read is its own request.
  }
}

/** An HTTP error status for a URL (404 tells an optional file is absent). */
export class HttpStatusError extends CheckpointError {
  constructor(
    url: string,
    readonly status: number,
    statusText: string,
  ) {
    const hint = status === 401 || status === 403 ? " (a gated or private model: give a Hugging Face token that has access to it)" : "";
    super(`${`${url}: HTTP ${status} ${statusText}`.trim()}${hint}`, url);
  }
}

/** fetch, with a network failure or an HTTP error turned into an error naming the URL. */
export async function fetchOrExplain(url: string, init?: RequestInit): Promise<Response> {
  let response: Response;
  try {
    response = await fetch(url, init);
  } catch (e) {
    throw new CheckpointError(`${url}: cannot fetch (${(e as Error).message}; a server on another origin must allow CORS)`, url);
  }
  if (!response.ok) {
    await response.body?.cancel();
    throw new HttpStatusError(url, response.status, response.statusText);
  }
  return response;
}
