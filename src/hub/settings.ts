/**
 * Where Hub files come from and go to, read the way `huggingface_hub` reads them: HF_ENDPOINT,
 * HF_TOKEN / HF_TOKEN_PATH / the token file `huggingface-cli login` writes, HF_HUB_CACHE / HF_HOME,
 * HF_HUB_OFFLINE.
 */
import { readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";

export interface HubOptions {
  /** Hub server (default HF_ENDPOINT or https://huggingface.co). */
  endpoint?: string;
  /** Access token (default HF_TOKEN, then the token file). */
  token?: string;
  /** HF cache folder (default HF_HUB_CACHE, HF_HOME/hub, ~/.cache/huggingface/hub). */
  cacheDir?: string;
  /** Never touch the network (default HF_HUB_OFFLINE). */
  offline?: boolean;
}

export interface HubSettings {
  endpoint: string;
  token: string | null;
  cacheDir: string;
  offline: boolean;
}

function hfHome(): string {
  return process.env["HF_HOME"] ?? join(process.env["XDG_CACHE_HOME"] ?? join(homedir(), ".cache"), "huggingface");
}

function tokenFromFile(): string | null {
  const path = process.env["HF_TOKEN_PATH"] ?? join(hfHome(), "token");
  try {
    return readFileSync(path, "utf8").trim() || null;
  } catch {
    return null;
  }
}

const truthy = (value: string | undefined) => value !== undefined && ["1", "true", "yes", "on"].includes(value.toLowerCase());

export function hubSettings(options: HubOptions = {}): HubSettings {
  return {
    endpoint: (options.endpoint ?? process.env["HF_ENDPOINT"] ?? "https://huggingface.co").replace(/\/+$/, ""),
    token: options.token ?? process.env["HF_TOKEN"] ?? process.env["HUGGING_FACE_HUB_TOKEN"] ?? tokenFromFile(),
    cacheDir: options.cacheDir ?? hfHubCachePath(),
    offline: options.offline ?? truthy(process.env["HF_HUB_OFFLINE"]),
  };
}

/**
 * The HF cache as @huggingface/hub's getHFHubCachePath finds it (HF_HUB_CACHE, then
 * HUGGINGFACE_HUB_CACHE, then HF_HOME/hub, then XDG_CACHE_HOME or ~/.cache, /huggingface/hub),
 * here so that naming a folder does not load the Hub client; a test holds the two equal.
 */
export function hfHubCachePath(env: Readonly<Record<string, string | undefined>> = process.env): string {
  const home = env["HF_HOME"] ?? join(env["XDG_CACHE_HOME"] ?? join(homedir(), ".cache"), "huggingface");
  return env["HF_HUB_CACHE"] ?? env["HUGGINGFACE_HUB_CACHE"] ?? join(home, "hub");
}
