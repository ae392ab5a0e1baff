/**
 * A local stand-in for the Hugging Face Hub, on a free loopback port, in the Hub's URL layout:
 *   GET  /api/models/{repo}/tree/{rev}?recursive=true   file listing (with lfs {oid, size})
 *   HEAD/GET /{repo}/resolve/{rev}/{path}                LFS files: 302 to /cdn/{sha256} with
 *                                                        X-Linked-Etag / X-Linked-Size; others 200
 *   GET  /cdn/{sha256}                                   bytes, with Range support
 * Gated repos answer 401 (no token) or 403 (token without access) with X-Error-Code: GatedRepo.
 * Faults can be injected: cut a download after N bytes, or serve corrupted bytes.
 */
import { createHash } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";

interface HostedFile {
  data: Buffer;
  sha256: string;
  gitSha1: string;
  lfs: boolean;
}

export interface HostedRepo {
  commit: string;
  files: Map<string, HostedFile>;
  gated?: { allowedToken: string };
}

export class FakeHub {
  readonly repos = new Map<string, HostedRepo>();
  /** Bytes served from file contents (LFS and regular), to tell whether a pull downloaded anything. */
  servedBytes = 0;
  /** sha256 → bytes after which the next download of it is cut off (once). */
  readonly cutAfter = new Map<string, number>();
  /** sha256s served with a flipped byte. */
  readonly corrupt = new Set<string>();
  url = "";
  private server = createServer((req, res) => this.handle(req, res));

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  /** Hosts every file of a local folder; files over 1 KiB are LFS files, like weights on the Hub. */
  host(repo: string, dir: string, gated?: { allowedToken: string }): HostedRepo {
    const files = new Map<string, HostedFile>();
    for (const name of readdirSync(dir)) {
      const data = readFileSync(join(dir, name));
      files.set(name, {
        data,
        sha256: createHash("sha256").update(data).digest("hex"),
        gitSha1: createHash("sha1").update(`blob ${data.length}\0`).update(data).digest("hex"),
        lfs: data.length > 1024,
      });
    }
    const hosted: HostedRepo = { commit: createHash("sha1").update(repo).digest("hex"), files, ...(gated ? { gated } : {}) };
    this.repos.set(repo, hosted);
    return hosted;
  }

  fileSha256(repo: string, path: string): string {
    return this.repos.get(repo)!.files.get(path)!.sha256;
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url!, this.url);
    const tree = /^\/api\/models\/([^/]+\/[^/]+)\/tree\/([^/]+)/.exec(url.pathname);
    const resolve = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(url.pathname);
    const cdn = /^\/cdn\/([0-9a-f]{64})$/.exec(url.pathname);
    if (tree) this.tree(res, decodeURIComponent(tree[1]!));
    else if (resolve) this.resolve(req, res, decodeURIComponent(resolve[1]!), decodeURIComponent(resolve[3]!));
    else if (cdn) this.cdn(req, res, cdn[1]!);
    else res.writeHead(404).end();
  }

  private tree(res: ServerResponse, repo: string): void {
    const hosted = this.repos.get(repo);
    if (!hosted)
      return void res
        .writeHead(401, { "content-type": "application/json", "x-error-code": "RepoNotFound" })
        .end(JSON.stringify({ error: "Repository not found" }));
    const items = [...hosted.files].map(([path, f]) => ({
      type: "file",
      oid: f.gitSha1,
      size: f.data.length,
      path,
      ...(f.lfs ? { lfs: { oid: f.sha256, size: f.data.length, pointerSize: 134 } } : {}),
    }));
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(items));
  }

  private resolve(req: IncomingMessage, res: ServerResponse, repo: string, path: string): void {
    const hosted = this.repos.get(repo);
    if (!hosted) return void res.writeHead(401, { "x-error-code": "RepoNotFound" }).end();
    if (hosted.gated) {
      const auth = req.headers["authorization"];
      if (!auth) return void res.writeHead(401, { "x-error-code": "GatedRepo" }).end();
      if (auth !== `Bearer ${hosted.gated.allowedToken}`) return void res.writeHead(403, { "x-error-code": "GatedRepo" }).end();
    }
    const file = hosted.files.get(path);
    if (!file) return void res.writeHead(404, { "x-error-code": "EntryNotFound" }).end();
    const common = { "x-repo-commit": hosted.commit };
    if (file.lfs) {
      res
        .writeHead(302, {
          ...common,
          location: `/cdn/${file.sha256}`,
          "x-linked-etag": `"${file.sha256}"`,
          "x-linked-size": String(file.data.length),
          etag: `"${file.gitSha1}"`,
        })
        .end();
      return;
    }
    res.writeHead(200, { ...common, etag: `"${file.gitSha1}"`, "content-length": String(file.data.length) });
    if (req.method === "HEAD") return void res.end();
    this.servedBytes += file.data.length;
    res.end(file.data);
  }

  private cdn(req: IncomingMessage, res: ServerResponse, sha: string): void {
    const file = [...this.repos.values()].flatMap((r) => [...r.files.values()]).find((f) => f.sha256 === sha);
    if (!file) return void res.writeHead(404).end();
    let data = file.data;
    if (this.corrupt.has(sha)) {
      data = Buffer.from(data);
      data[data.length >> 1]! ^= 0xff;
    }
    const range = /^bytes=(\d+)-$/.exec(req.headers["range"] ?? "");
    const start = range ? Number(range[1]) : 0;
    const body = data.subarray(start);
    const headers = { "content-length": String(body.length), etag: `"${sha}"`, "accept-ranges": "bytes" };
    if (range) res.writeHead(206, { ...headers, "content-range": `bytes ${start}-${data.length - 1}/${data.length}` });
    else res.writeHead(200, headers);
    const cut = this.cutAfter.get(sha);
    if (cut !== undefined) {
      this.cutAfter.delete(sha);
      this.servedBytes += cut;
      res.write(body.subarray(0, cut), () => res.destroy());
      return;
    }
    this.servedBytes += body.length;
    res.end(body);
  }
}
