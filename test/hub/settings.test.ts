import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, it } from "node:test";
import { looksLikeRepoId, parseRepoSpec } from "../../src/hub/repo-id.js";
import { repoFolderName } from "../../src/hub/cache.js";
import { hfHubCachePath, hubSettings } from "../../src/hub/settings.js";
import { tempDir } from "../helpers/temp.js";

const VARS = [
  "HF_ENDPOINT",
  "HF_TOKEN",
  "HUGGING_FACE_HUB_TOKEN",
  "HF_TOKEN_PATH",
  "HF_HOME",
  "HF_HUB_CACHE",
  "HUGGINGFACE_HUB_CACHE",
  "HF_HUB_OFFLINE",
  "XDG_CACHE_HOME",
];
const saved = Object.fromEntries(VARS.map((v) => [v, process.env[v]]));

describe("Hub settings from the environment", () => {
  afterEach(() => {
    for (const v of VARS) {
      if (saved[v] === undefined) delete process.env[v];
      else process.env[v] = saved[v];
    }
  });
  const clear = () => {
    for (const v of VARS) delete process.env[v];
  };

  it("reads HF_HOME for the cache and the token file huggingface-cli login writes", () => {
    clear();
    const home = tempDir("hf-home");
    writeFileSync(join(home, "token"), "hf_from_file\n");
    process.env["HF_HOME"] = home;
    const s = hubSettings();
    assert.equal(s.cacheDir, join(home, "hub"));
    assert.equal(s.token, "hf_from_file");
    assert.equal(s.endpoint, "https://huggingface.co");
    assert.equal(s.offline, false);
  });

  it("prefers HF_TOKEN, HF_HUB_CACHE and HF_ENDPOINT, and honours HF_HUB_OFFLINE", () => {
    clear();
    process.env["HF_TOKEN"] = "hf_env";
    process.env["HF_HUB_CACHE"] = "/data/hf";
    process.env["HF_ENDPOINT"] = "https://mirror.example/";
    process.env["HF_HUB_OFFLINE"] = "1";
    assert.deepEqual(hubSettings(), { endpoint: "https://mirror.example", token: "hf_env", cacheDir: "/data/hf", offline: true });
    assert.equal(hubSettings({ offline: false }).offline, false);
  });

  it("finds the cache where @huggingface/hub does, for every variable that moves it, without loading that package", async () => {
    const { getHFHubCachePath, getRepoFolderName } = await import("@huggingface/hub");
    const settings = [
      {},
      { XDG_CACHE_HOME: "/xdg" },
      { HF_HOME: "/hf-home", XDG_CACHE_HOME: "/xdg" },
      { HUGGINGFACE_HUB_CACHE: "/legacy", HF_HOME: "/hf-home" },
      { HF_HUB_CACHE: "/hub", HUGGINGFACE_HUB_CACHE: "/legacy", HF_HOME: "/hf-home" },
    ];
    for (const vars of settings) {
      clear();
      Object.assign(process.env, vars);
      assert.equal(hfHubCachePath(), getHFHubCachePath(), JSON.stringify(vars));
      assert.equal(hubSettings().cacheDir, getHFHubCachePath());
    }
    for (const repo of ["google/gemma-2-2b-it", "org/name.with-dots"]) {
      assert.equal(repoFolderName(repo), getRepoFolderName({ name: repo, type: "model" }));
    }
  });

  it("reads HF_TOKEN_PATH", () => {
    clear();
    const file = join(tempDir("hf-tok"), "tok");
    writeFileSync(file, "hf_path");
    process.env["HF_TOKEN_PATH"] = file;
    assert.equal(hubSettings().token, "hf_path");
  });
});

describe("repo ids", () => {
  it("parses org/name and org/name@revision", () => {
    assert.deepEqual(parseRepoSpec("google/gemma-2-2b-it"), { repo: "google/gemma-2-2b-it", revision: "main" });
    assert.deepEqual(parseRepoSpec("google/gemma-2-9b@refs/pr/3"), { repo: "google/gemma-2-9b", revision: "refs/pr/3" });
    for (const notRepo of ["./models/x", "/abs/path", "just-a-name", "a/b/c", "../x/y", "a/b@"])
      assert.equal(looksLikeRepoId(notRepo), false, notRepo);
  });
});
