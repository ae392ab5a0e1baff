/**
 * What the page's model box accepts, as a URL: an http(s) URL as it is; a path relative to the
 * page (`./x.gguf`, `/models/x.gguf`); a Hub repo id `org/name[@revision]` (its folder) or one of
 * its files, `org/name/file.gguf[@revision]`, under the Hub's `resolve` addresses, which answer
 * CORS and range requests.
 */
import { looksLikeRepoId } from "../hub/repo-id.js";

export const HUB_ENDPOINT = "https://huggingface.co";

export function modelAddress(input: string, page: string, endpoint = HUB_ENDPOINT): string {
  const text = input.trim();
  if (/^https?:\/\//i.test(text) || /^\.{0,2}\//.test(text)) return new URL(text, page).href;
  const [spec, revision = "main"] = text.split("@", 2) as [string, string?];
  const file = /^([\w.-]+\/[\w.-]+)\/(.+\.gguf)$/.exec(spec);
  const resolve = (repo: string) => `${endpoint}/${repo}/resolve/${encodeURIComponent(revision)}/`;
  if (file) return resolve(file[1]!) + file[2]!.split("/").map(encodeURIComponent).join("/");
  if (looksLikeRepoId(text) && !spec.endsWith(".gguf")) return resolve(spec);
  return new URL(text, page).href;
}
