/** The demo model shipped in the package (docs/demo-model.md), the CLI's default --model. */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { BUNDLED_MODEL } from "../src/bundled.js";
import { perplexity } from "../src/eval/perplexity.js";
import { loadModel } from "../src/gemma.js";
import { FIXTURES } from "./helpers/random-model.js";

/** Perplexity per token on 1 Samuel 1-3 (never trained on): 78.18 in docs/demo-model.md, plus 10%. */
const HELD_OUT_PERPLEXITY_LIMIT = 86;
/** A unigram model of the training text scores 401 per token on held-out KJV text (docs/demo-model.md). */
const UNIGRAM_PERPLEXITY = 401;

describe("the bundled demo model", () => {
  it("loads from the package, stays under its documented held-out perplexity, far below a unigram model", async () => {
    const model = await loadModel(BUNDLED_MODEL);
    assert.equal(model.config.family, "gemma2");
    const text = readFileSync(`${FIXTURES}text/kjv-1samuel-1-3.txt`, "utf8");
    const ids = model.tokenizer!.encode(text, { parseControlTokens: false });
    const result = await perplexity(model, ids, { context: 256, stride: 128 });
    assert.ok(result.perplexity < HELD_OUT_PERPLEXITY_LIMIT, `held-out perplexity ${result.perplexity}`);
    assert.ok(result.perplexity < UNIGRAM_PERPLEXITY / 4);
    assert.ok(result.tokens > 3000);
  });

  it("is what `gemma-ts generate` runs without --model", () => {
    const main = new URL("../src/cli/main.ts", import.meta.url).pathname;
    const r = spawnSync(process.execPath, ["--import", "tsx", main, "generate", "--prompt", "And God said", "-n", "16", "--seed", "1"], {
      encoding: "utf8",
      timeout: 60_000,
    });
    assert.equal(r.status, 0, r.stderr);
    assert.ok(r.stdout.trim().length > 10, r.stdout);
  });
});
