/**
 * `pull`: fetches exactly the files a model needs from the Hub into the shared HF cache, in
 * parallel, resumable and verified; and `cachedSnapshot`: finds a complete model there offline.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { RepoCache } from "./cache.js";
import { downloadBlob, type RemoteFile } from "./download.js";
import { HubError, parseRepoSpec, type RepoSpec } from "./repo-id.js";
import { hubSettings, type HubOptions, type HubSettings } from "./settings.js";

export interface FileProgress {
  path: string;
  size: number;
  received: number;
  /** "cached": already in the cache, nothing downloaded. */
  state: "waiting" | "downloading" | "done" | "cached";
}

export interface PullProgress {
  files: readonly FileProgress[];
  receivedBytes: number;
  totalBytes: number;
}

export interface PullOptions extends HubOptions {
  /** Fetch only this file (a GGUF, say) instead of the model's config, tokenizer and weights. */
  file?: string;
  /** Parallel downloads (default 4). */
  concurrency?: number;
  onProgress?: (progress: PullProgress) => void;
}

export interface PullResult {
  repo: string;
  commit: string;
  /** The snapshot folder: a checkpoint folder loadModel can read. */
  dir: string;
  files: string[];
  downloadedBytes: number;
}

const OPTIONAL_FILES = ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "generation_config.json"];
const INDEX = "model.safetensors.index.json";

export async function pullModel(spec: string, options: PullOptions = {}): Promise<PullResult> {
  const settings = hubSettings(options);
  const repoSpec = parseRepoSpec(spec);
  const cache = new RepoCache(settings.cacheDir, repoSpec.repo);
  if (settings.offline) {
    const dir = await cachedSnapshot(spec, options);
    if (!dir) throw offlineMissing(settings, repoSpec, options.file);
    return { repo: repoSpec.repo, commit: (await cache.commitFor(repoSpec.revision))!, dir, files: [], downloadedBytes: 0 };
  }
  const listing = await listRepo(settings, repoSpec);
  const progress = new ProgressTracker(options.onProgress);
  const fetcher = new FileFetcher(settings, repoSpec, cache, progress, options.concurrency ?? 4);
  await cache.ensureDirs();

  let wanted: string[];
  if (options.file) {
    if (!listing.has(options.file) || options.file.split("/").includes(".."))
      throw new HubError(`${repoSpec.repo}@${repoSpec.revision} has no file ${options.file}`);
    wanted = [options.file];
    await fetcher.fetchAll(wanted);
  } else {
    if (!listing.has("config.json"))
      throw new HubError(`${repoSpec.repo}@${repoSpec.revision} has no config.json; not a Transformers model repo`);
    const small = ["config.json", ...OPTIONAL_FILES.filter((f) => listing.has(f))];
    if (listing.has(INDEX)) small.push(INDEX);
    else if (!listing.has("model.safetensors")) {
      const ggufs = [...listing].filter((f) => f.endsWith(".gguf"));
      throw new HubError(
        `${repoSpec.repo}@${repoSpec.revision} has no model.safetensors or ` +
          `${INDEX}${ggufs.length ? `; it has GGUF files (${ggufs.slice(0, 3).join(", ")}): pick one with --file` : ""}`,
      );
    }
    await fetcher.fetchAll(small);
    wanted = [...small];
    const weights = listing.has(INDEX) ? await shardsOf(join(cache.snapshotDir(fetcher.commit!), INDEX)) : ["model.safetensors"];
    for (const shard of weights)
      if (!listing.has(shard)) throw new HubError(`${INDEX} names ${shard}, which is not in ${repoSpec.repo}@${repoSpec.revision}`);
    wanted.push(...weights);
    await fetcher.fetchAll(weights);
  }
  await cache.writeRef(repoSpec.revision, fetcher.commit!);
  return {
    repo: repoSpec.repo,
    commit: fetcher.commit!,
    dir: cache.snapshotDir(fetcher.commit!),
    files: wanted,
    downloadedBytes: fetcher.downloadedBytes,
  };
}

/** A complete cached snapshot for the spec (config, tokenizer if listed, every weight shard), or null. */
export async function cachedSnapshot(spec: string, options: HubOptions & { file?: string } = {}): Promise<string | null> {
  const settings = hubSettings(options);
  const { repo, revision } = parseRepoSpec(spec);
  const cache = new RepoCache(settings.cacheDir, repo);
  const commit = await cache.commitFor(revision);
  if (!commit) return null;
  const has = (file: string) => cache.hasFile(commit, file);
  if (options.file) return (await has(options.file)) ? cache.snapshotDir(commit) : null;
  if (!(await has("config.json"))) return null;
  let weights = ["model.safetensors"];
  if (await has(INDEX)) weights = await shardsOf(join(cache.snapshotDir(commit), INDEX));
  for (const w of weights) if (!(await has(w))) return null;
  return cache.snapshotDir(commit);
}

function offlineMissing(settings: HubSettings, spec: RepoSpec, file?: string): HubError {
  const what = file ?? "the model files";
  return new HubError(
    `offline: ${spec.repo}@${spec.revision} (${what}) is not in the HF cache at ${settings.cacheDir}; run gemma-ts pull ${spec.repo} ` +
      `with network access first`,
  );
}

async function shardsOf(indexPath: string): Promise<string[]> {
  let map: unknown;
  try {
    map = (JSON.parse(await readFile(indexPath, "utf8")) as { weight_map?: unknown }).weight_map;
  } catch (e) {
    throw new HubError(`${indexPath}: not valid JSON (${(e as Error).message})`);
  }
  if (typeof map !== "object" || map === null) throw new HubError(`${indexPath}: missing "weight_map"`);
  const shards = [...new Set(Object.values(map as Record<string, unknown>))];
  if (!shards.every((s) => typeof s === "string" && /^[\w.-]+$/.test(s)))
    throw new HubError(`${indexPath}: weight_map must name files in the repo's top folder`);
  return (shards as string[]).sort();
}

async function listRepo(settings: HubSettings, spec: RepoSpec): Promise<Set<string>> {
  const files = new Set<string>();
  // The Hub client (about 11 MiB of a process, with its task tables) loads when a repo is listed.
  const { HubApiError, listFiles } = await import("@huggingface/hub");
  try {
    for await (const entry of listFiles({
      repo: { type: "model", name: spec.repo },
      revision: spec.revision,
      recursive: true,
      hubUrl: settings.endpoint,
      ...(settings.token ? { accessToken: settings.token } : {}),
    })) {
      if (entry.type === "file") files.add(entry.path);
    }
  } catch (e) {
    if (e instanceof HubApiError) throw accessError(settings, spec, e.statusCode, null);
    if (e instanceof TypeError && /access token/.test(e.message))
      throw new HubError(`the Hugging Face token is malformed (${e.message}); check HF_TOKEN or the token file`);
    throw new HubError(`cannot reach ${settings.endpoint} (${(e as Error).message}); use --offline to run from the cache`);
  }
  return files;
}

/** Turns the Hub's refusals into messages that say what to do. */
function accessError(settings: HubSettings, spec: RepoSpec, status: number, errorCode: string | null): HubError {
  const page = `${settings.endpoint}/${spec.repo}`;
  if (errorCode === "GatedRepo" || (status === 403 && errorCode !== "RepoNotFound")) {
    return new HubError(
      settings.token
        ? `${spec.repo} is gated and this token has no access yet: accept the licence on ${page} (logged in as the token's owner), then ` +
            `retry`
        : `${spec.repo} is gated: accept the licence on ${page}, then set HF_TOKEN (or run huggingface-cli login) and retry`,
    );
  }
  if (errorCode === "RevisionNotFound") return new HubError(`${spec.repo} has no revision ${spec.revision}`);
  if (status === 401 || status === 404) {
    return new HubError(
      `repository ${spec.repo} not found on ${settings.endpoint} (and no such local ` +
        `folder)${settings.token ? "" : "; if it is private, set HF_TOKEN"}`,
    );
  }
  return new HubError(`${settings.endpoint} answered HTTP ${status} for ${spec.repo}`);
}

class ProgressTracker {
  readonly files: FileProgress[] = [];
  constructor(private readonly listener?: (p: PullProgress) => void) {}

  add(path: string, size: number, state: FileProgress["state"]): FileProgress {
    const entry: FileProgress = { path, size, received: state === "cached" ? size : 0, state };
    this.files.push(entry);
    this.emit();
    return entry;
  }

  emit(): void {
    if (!this.listener) return;
    const totalBytes = this.files.reduce((s, f) => s + f.size, 0);
    const receivedBytes = this.files.reduce((s, f) => s + f.received, 0);
    this.listener({ files: this.files, receivedBytes, totalBytes });
  }
}

/** Resolves each file's metadata (HEAD, without following the LFS redirect) and downloads what is missing. */
class FileFetcher {
  commit: string | null = null;
  downloadedBytes = 0;

  constructor(
    private readonly settings: HubSettings,
    private readonly spec: RepoSpec,
    private readonly cache: RepoCache,
    private readonly progress: ProgressTracker,
    private readonly concurrency: number,
  ) {}

  async fetchAll(paths: string[]): Promise<void> {
    const remotes: RemoteFile[] = [];
    for (const path of paths) remotes.push(await this.metadata(path));
    const queue = [...remotes];
    const worker = async () => {
      for (let file = queue.shift(); file; file = queue.shift()) await this.fetchOne(file);
    };
    await Promise.all(Array.from({ length: Math.min(this.concurrency, queue.length) }, worker));
  }

  private async fetchOne(file: RemoteFile): Promise<void> {
    if (await this.cache.hasBlob(file.etag)) {
      this.progress.add(file.path, file.size, "cached");
    } else {
      const entry = this.progress.add(file.path, file.size, "downloading");
      await downloadBlob(this.cache, file, this.settings.token, (bytes) => {
        entry.received += bytes;
        this.downloadedBytes += bytes;
        this.progress.emit();
      });
      entry.state = "done";
      this.progress.emit();
    }
    await this.cache.link(this.commit!, file.path, file.etag);
  }

  private async metadata(path: string): Promise<RemoteFile> {
    const filePath = path.split("/").map(encodeURIComponent).join("/");
    const resolveUrl = `${this.settings.endpoint}/${this.spec.repo}/resolve/${encodeURIComponent(this.spec.revision)}/${filePath}`;
    const headers: Record<string, string> = { "accept-encoding": "identity" };
    if (this.settings.token) headers["authorization"] = `Bearer ${this.settings.token}`;
    let response: Response;
    try {
      response = await fetch(resolveUrl, { method: "HEAD", redirect: "manual", headers });
    } catch (e) {
      throw new HubError(`cannot reach ${this.settings.endpoint} (${(e as Error).message}); use --offline to run from the cache`);
    }
    const errorCode = response.headers.get("x-error-code");
    if (response.status === 404 && errorCode === "EntryNotFound")
      throw new HubError(`${this.spec.repo}@${this.spec.revision} has no file ${path}`);
    if (response.status >= 400) throw accessError(this.settings, this.spec, response.status, errorCode);
    const redirected = response.status >= 300 && response.status < 400;
    const location = response.headers.get("location");
    const url = redirected && location ? new URL(location, resolveUrl).toString() : resolveUrl;
    const etag = (response.headers.get("x-linked-etag") ?? response.headers.get("etag") ?? "").replace(/^W\//, "").replaceAll('"', "");
    const size = Number(response.headers.get("x-linked-size") ?? response.headers.get("content-length"));
    const commit = response.headers.get("x-repo-commit");
    if (!etag || !Number.isSafeInteger(size) || !commit) {
      throw new HubError(
        `${resolveUrl}: the server did not send ETag, size and X-Repo-Commit; is ${this.settings.endpoint} a Hugging Face Hub?`,
      );
    }
    if (this.commit && this.commit !== commit)
      throw new HubError(
        `${this.spec.repo}@${this.spec.revision} changed while downloading (commit ${this.commit} then ${commit}); run again`,
      );
    this.commit = commit;
    return { path, url, size, etag, sendToken: new URL(url).origin === new URL(resolveUrl).origin };
  }
}
