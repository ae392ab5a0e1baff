/** Hub repo ids as users type them: `org/name` with an optional `@revision`. */
import { GemmaError } from "../errors.js";

export class HubError extends GemmaError {
  override name = "HubError";
}

export interface RepoSpec {
  repo: string;
  /** Branch, tag or commit (default "main"). */
  revision: string;
}

const REPO_PATTERN = /^[A-Za-z0-9][\w.-]*\/[\w.-]+$/;
const REVISION_PATTERN = /^[\w.\-/]+$/;

/** True for text shaped like `org/name[@rev]` (callers check for a local path first). */
export function looksLikeRepoId(spec: string): boolean {
  const [repo, revision] = splitSpec(spec);
  return REPO_PATTERN.test(repo) && !repo.includes("..") && (revision === undefined || REVISION_PATTERN.test(revision));
}

export function parseRepoSpec(spec: string): RepoSpec {
  if (!looksLikeRepoId(spec)) throw new HubError(`${JSON.stringify(spec)} is not a Hub repo id (expected org/name or org/name@revision)`);
  const [repo, revision] = splitSpec(spec);
  return { repo, revision: revision ?? "main" };
}

function splitSpec(spec: string): [string, string | undefined] {
  const at = spec.indexOf("@");
  return at < 0 ? [spec, undefined] : [spec.slice(0, at), spec.slice(at + 1)];
}

export const COMMIT_PATTERN = /^[0-9a-f]{40}$/;
