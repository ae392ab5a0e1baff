/**
 * Downloads one file into the cache's blobs/: resumes a partial file with an HTTP Range request,
 * checks the size and the digest the Hub reports (sha256 for LFS files, the git blob sha1 for
 * others) and only then moves the file into place. A corrupt download is deleted, never kept.
 */
import { createHash, type Hash } from "node:crypto";
import { createReadStream } from "node:fs";
import { open, rm, stat } from "node:fs/promises";
import type { RepoCache } from "./cache.js";
import { HubError } from "./repo-id.js";

export interface RemoteFile {
  /** Path inside the repo. */
  path: string;
  /** Where the bytes are (after the Hub's redirect for LFS files). */
  url: string;
  size: number;
  /** The blob name: sha256 for LFS files, git sha1 otherwise. */
  etag: string;
  /** Whether the URL needs the Hub token (not for a CDN on another host). */
  sendToken: boolean;
}

const SHA256 = /^[0-9a-f]{64}$/;
const SHA1 = /^[0-9a-f]{40}$/;

/** The digest an ETag promises, or null when it is an opaque tag we cannot check. */
function newDigest(etag: string, size: number): Hash | null {
  if (SHA256.test(etag)) return createHash("sha256");
  if (SHA1.test(etag)) return createHash("sha1").update(`blob ${size}\0`);
  return null;
}

async function hashExisting(digest: Hash | null, path: string): Promise<void> {
  if (!digest) return;
  for await (const chunk of createReadStream(path)) digest.update(chunk as Buffer);
}

export async function downloadBlob(
  cache: RepoCache,
  file: RemoteFile,
  token: string | null,
  onBytes: (bytes: number) => void,
): Promise<void> {
  const partial = cache.partialPath(file.etag);
  let have = (await stat(partial).catch(() => null))?.size ?? 0;
  if (have > file.size) {
    await rm(partial, { force: true });
    have = 0;
  }
  let digest = newDigest(file.etag, file.size);
  if (have > 0) await hashExisting(digest, partial);
  if (have > 0) onBytes(have);

  const headers: Record<string, string> = {};
  if (token && file.sendToken) headers["authorization"] = `Bearer ${token}`;
  if (have > 0) headers["range"] = `bytes=${have}-`;
  let response: Response;
  try {
    response = await fetch(file.url, { headers });
  } catch (e) {
    throw new HubError(`${file.path}: cannot reach ${new URL(file.url).origin} (${(e as Error).message})`);
  }
  if (response.status === 200 && have > 0) {
    // The server ignored the Range header: start over.
    onBytes(-have);
    have = 0;
    digest = newDigest(file.etag, file.size);
  } else if (response.status !== 206 && response.status !== 200) {
    await response.body?.cancel();
    if (response.status === 416) await rm(partial, { force: true });
    throw new HubError(
      `${file.path}: download failed with HTTP ${response.status}${response.status === 416 ? " (partial file discarded; run again)" : ""}`,
    );
  }

  const handle = await open(partial, have > 0 ? "a" : "w");
  let received = have;
  try {
    if (response.body) {
      // Node's ReadableStream is async-iterable; the DOM typings do not say so.
      for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
        await handle.write(chunk);
        digest?.update(chunk);
        received += chunk.length;
        onBytes(chunk.length);
      }
    }
  } catch (e) {
    throw new HubError(
      `${file.path}: download interrupted at ${received} of ${file.size} bytes (${(e as Error).message}); run the same command again to ` +
        `resume`,
    );
  } finally {
    await handle.close();
  }
  if (received !== file.size) {
    throw new HubError(`${file.path}: download incomplete: ${received} of ${file.size} bytes; run the same command again to resume`);
  }
  const actual = digest?.digest("hex");
  if (digest && actual !== file.etag) {
    await rm(partial, { force: true });
    throw new HubError(
      `${file.path}: integrity check failed (expected ${SHA256.test(file.etag) ? "sha256" : "git sha1"} ${file.etag}, got ${actual}); ` +
        `the corrupt download was deleted`,
    );
  }
  await cache.storeBlob(file.etag, partial);
}
