/**
 * The Hugging Face cache layout, shared with Python tools:
 *   models--org--name/blobs/<etag>            file contents, named by ETag (sha256 for LFS files)
 *   models--org--name/refs/<revision>         the commit a branch or tag pointed to
 *   models--org--name/snapshots/<commit>/<f>  relative symlinks into blobs/
 */
import { mkdir, readFile, readlink, rename, rm, stat, symlink, writeFile } from "node:fs/promises";
import { dirname, join, relative } from "node:path";
import { COMMIT_PATTERN } from "./repo-id.js";

export class RepoCache {
  readonly root: string;

  constructor(
    cacheDir: string,
    readonly repo: string,
  ) {
    this.root = join(cacheDir, repoFolderName(repo));
  }

  blobPath(etag: string): string {
    return join(this.root, "blobs", etag);
  }

  /** Where an interrupted download of a blob waits to be resumed. */
  partialPath(etag: string): string {
    return `${this.blobPath(etag)}.incomplete`;
  }

  snapshotDir(commit: string): string {
    return join(this.root, "snapshots", commit);
  }

  /** The commit a revision resolves to in the cache, or null. A commit hash resolves to itself. */
  async commitFor(revision: string): Promise<string | null> {
    if (COMMIT_PATTERN.test(revision)) return revision;
    try {
      const commit = (await readFile(join(this.root, "refs", revision), "utf8")).trim();
      return COMMIT_PATTERN.test(commit) ? commit : null;
    } catch {
      return null;
    }
  }

  async writeRef(revision: string, commit: string): Promise<void> {
    if (revision === commit) return;
    const path = join(this.root, "refs", revision);
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, commit);
  }

  async hasBlob(etag: string): Promise<boolean> {
    return (await stat(this.blobPath(etag)).catch(() => null))?.isFile() ?? false;
  }

  /** Moves a verified download into blobs/. */
  async storeBlob(etag: string, downloaded: string): Promise<void> {
    await rename(downloaded, this.blobPath(etag));
  }

  /** Points snapshots/<commit>/<file> at blobs/<etag> with a relative link, as huggingface_hub does. */
  async link(commit: string, file: string, etag: string): Promise<string> {
    const path = join(this.snapshotDir(commit), file);
    const target = relative(dirname(path), this.blobPath(etag));
    if ((await readlink(path).catch(() => null)) === target) return path;
    await mkdir(dirname(path), { recursive: true });
    await rm(path, { force: true });
    await symlink(target, path);
    return path;
  }

  /** True when the snapshot holds `file` and its blob is really there. */
  async hasFile(commit: string, file: string): Promise<boolean> {
    return (await stat(join(this.snapshotDir(commit), file)).catch(() => null))?.isFile() ?? false;
  }

  async ensureDirs(): Promise<void> {
    await mkdir(join(this.root, "blobs"), { recursive: true });
  }
}

/** A model repo's folder in the HF cache, as @huggingface/hub's getRepoFolderName names it: models--org--name. */
export function repoFolderName(repo: string): string {
  return ["models", ...repo.split("/")].join("--");
}
