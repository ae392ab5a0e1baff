/**
 * What `--model` means: a local folder or file if one exists, else a Hub repo id (or one GGUF file
 * of a repo: `org/name/file.gguf`) resolved from the HF cache first and downloaded only when missing.
 */
import { stat } from "node:fs/promises";
import { join } from "node:path";
import { CheckpointError } from "../errors.js";
import type { PullOptions } from "./pull.js";
import { HubError, looksLikeRepoId } from "./repo-id.js";

/** `org/name[@revision]/path/file.gguf`: one GGUF file of a Hub repo. */
export function splitGgufSpec(spec: string): { repo: string; file: string } | null {
  const parts = spec.split("/");
  if (parts.length < 3 || !spec.endsWith(".gguf")) return null;
  const repo = parts.slice(0, 2).join("/");
  return looksLikeRepoId(repo) ? { repo, file: parts.slice(2).join("/") } : null;
}

export async function resolveModelPath(spec: string, options: PullOptions = {}): Promise<string> {
  if (await stat(spec).catch(() => null)) return spec;
  const gguf = splitGgufSpec(spec);
  if (gguf) return join(await resolveModelPath(gguf.repo, { ...options, file: gguf.file }), gguf.file);
  if (!looksLikeRepoId(spec)) throw new CheckpointError(`${spec}: no such file or folder`, spec);
  // The Hub client (about 11 MB of a process) loads only when a repo id is given, not for a local file.
  const [{ cachedSnapshot, pullModel }, { hubSettings }] = await Promise.all([import("./pull.js"), import("./settings.js")]);
  const cached = await cachedSnapshot(spec, options);
  if (cached) return cached;
  const settings = hubSettings(options);
  if (settings.offline) {
    throw new HubError(
      `offline: ${spec} is neither a local folder nor complete in the HF cache at ${settings.cacheDir}; run gemma-ts pull ${spec} with ` +
        `network access first`,
    );
  }
  return (await pullModel(spec, options)).dir;
}
