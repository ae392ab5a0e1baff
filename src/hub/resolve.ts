/**
 * What `--model` means: a local folder or file if one exists, else a Hub repo id resolved from the
 * HF cache first and downloaded only when missing.
 */
import { stat } from "node:fs/promises";
import { CheckpointError } from "../errors.js";
import { cachedSnapshot, pullModel, type PullOptions } from "./pull.js";
import { HubError, looksLikeRepoId } from "./repo-id.js";
import { hubSettings } from "./settings.js";

export async function resolveModelPath(spec: string, options: PullOptions = {}): Promise<string> {
  if (await stat(spec).catch(() => null)) return spec;
  if (!looksLikeRepoId(spec)) throw new CheckpointError(`${spec}: no such file or folder`, spec);
  const cached = await cachedSnapshot(spec, options);
  if (cached) return cached;
  const settings = hubSettings(options);
  if (settings.offline) {
    throw new HubError(`offline: ${spec} is neither a local folder nor complete in the HF cache at ${settings.cacheDir}; run gemma-ts pull ${spec} with network access first`);
  }
  return (await pullModel(spec, options)).dir;
}
