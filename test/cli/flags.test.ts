/**
 * Every flag a command accepts must change what happens. Each case runs the CLI on the bundled
 * model with one flag set and checks its effect on the output against a run without it.
 */
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { relaxedSimdSupported } from "../../src/backend/wasm/features.js";
import { tinyGemma2Json, writeRandomModel } from "../helpers/random-model.js";
import { cliAsync } from "../helpers/cli.js";
import { tempDir } from "../helpers/temp.js";

async function ok(args: string[]): Promise<{ stdout: string; stderr: string }> {
  const r = await cliAsync(args);
  assert.equal(r.code, 0, `${args.join(" ")}: ${r.stderr}`);
  return r;
}

const GENERATE = ["generate", "--prompt", "And the LORD said", "-n", "24", "--seed", "1"];

describe("every accepted CLI flag changes what happens", () => {
  it("sampling flags of generate", async () => {
    const variants: Record<string, string[]> = {
      base: [],
      greedy: ["--temperature", "0"],
      seed: ["--seed", "2"],
      topK1: ["--top-k", "1"],
      topP: ["--top-p", "0.01"],
      minP: ["--min-p", "1"],
      repetition: ["--temperature", "0", "--repetition-penalty", "3"],
      // Long enough for tokens to repeat, so that counting repeats (frequency) differs from not (presence).
      greedy60: ["--temperature", "0", "-n", "60"],
      presence: ["--temperature", "0", "-n", "60", "--presence-penalty", "0.4"],
      frequency: ["--temperature", "0", "-n", "60", "--frequency-penalty", "0.4"],
      maxTokens: ["--max-tokens", "3"],
      hot: ["--temperature", "5", "--top-k", "0", "--top-p", "1"],
      chat: ["--temperature", "0", "--chat"],
      system: ["--temperature", "0", "--chat", "--system", "Speak of Egypt."],
    };
    const out: Record<string, string> = {};
    await Promise.all(
      Object.entries(variants).map(async ([name, flags]) => {
        out[name] = (await ok([...GENERATE, ...flags])).stdout;
      }),
    );
    const differs = (a: string, b: string) => assert.notEqual(out[a], out[b], `${a} vs ${b}: ${JSON.stringify(out[a])}`);
    differs("greedy", "base");
    differs("seed", "base");
    // top-k 1, a tiny nucleus and min-p 1 each leave only the most likely token: greedy.
    for (const name of ["topK1", "topP", "minP"]) assert.equal(out[name], out["greedy"], name);
    differs("repetition", "greedy");
    differs("presence", "greedy60");
    differs("frequency", "greedy60");
    differs("frequency", "presence");
    differs("hot", "base");
    assert.ok(out["base"]!.startsWith(out["maxTokens"]!.trimEnd()) && out["maxTokens"]!.length < out["base"]!.length / 2);
    differs("chat", "greedy");
    differs("system", "chat");

    const base = out["base"]!;
    const word = base.trim().split(/\s+/)[2]!;
    const stopped = (await ok([...GENERATE, "--stop", word])).stdout;
    assert.ok(stopped.length < base.length && !stopped.includes(word), `--stop ${word}: ${JSON.stringify(stopped)}`);
  });

  it("model flags: --quant, --backend, --threads, --debug", async () => {
    const dir = tempDir("gemma-ts-flags");
    const text = join(dir, "text.txt");
    writeFileSync(text, "In the beginning God created the heaven and the earth. And the earth was without form, and void.\n");
    const ppl = async (flags: string[]) =>
      JSON.parse((await ok(["perplexity", "--data", text, "--json", ...flags])).stdout) as { perplexity: number; tokens: number };
    const [none, q8, q4, js, shortContext] = await Promise.all([
      ppl([]),
      ppl(["--quant", "q8_0"]),
      ppl(["--quant", "q4_0"]),
      ppl(["--backend", "js"]),
      ppl(["--context", "8", "--stride", "4"]),
    ]);
    assert.notEqual(q8.perplexity, none.perplexity, "--quant q8_0 changes the weights");
    assert.notEqual(q4.perplexity, q8.perplexity, "--quant q4_0 differs from q8_0");
    assert.ok(Math.abs(q8.perplexity / none.perplexity - 1) < 0.02, `q8_0 stays close: ${q8.perplexity} vs ${none.perplexity}`);
    assert.ok(Math.abs(js.perplexity / none.perplexity - 1) < 1e-4, "--backend js computes the same model");
    assert.ok(shortContext.perplexity > none.perplexity, "--context 8 sees less of the text");

    const kernels = async (flags: string[]) => /kernels: (\S+)/.exec((await ok([...GENERATE, "-n", "2", "--debug", ...flags])).stderr)?.[1];
    assert.equal(await kernels(["--backend", "js"]), "js");
    // Relaxed SIMD where the engine has it (Node >= 22; features.ts), and --no-relaxed-simd turns it off.
    const relaxed = relaxedSimdSupported() ? "wasm-relaxed" : "wasm";
    assert.equal(await kernels(["--threads", "1"]), relaxed);
    assert.equal(await kernels(["--threads", "3"]), `${relaxed}×3`);
    assert.equal(await kernels(["--threads", "3", "--no-relaxed-simd"]), "wasm×3");
    assert.equal((await ok([...GENERATE, "-n", "2"])).stderr.includes("kernels:"), false, "no diagnostics without --debug");
  });

  it("--allow-unused-tensors loads weights whose config uses fewer layers; without it they are refused", async () => {
    const dir = writeRandomModel(tinyGemma2Json(), 1);
    const config = JSON.parse(readFileSync(join(dir, "config.json"), "utf8")) as Record<string, unknown>;
    writeFileSync(join(dir, "config.json"), JSON.stringify({ ...config, num_hidden_layers: 2 }));
    const args = ["generate", "--model", dir, "--prompt-ids", "2,5,7", "-n", "2", "--temperature", "0"];
    const refused = await cliAsync(args);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /the config says 2 layers but the weights hold 4/);
    const loaded = await ok([...args, "--allow-unused-tensors"]);
    assert.match(loaded.stdout, /^\d+ \d+ ?\n$/);
  });

  it("flags a command does not use are refused, not ignored", async () => {
    const info = await cliAsync(["info", "--quant", "q8_0"]);
    assert.equal(info.code, 1);
    assert.match(info.stderr, /unknown option '--quant'/);
    const alpha = await cliAsync([
      "train",
      "--config",
      "x.json",
      "--tokenizer",
      "t",
      "--data",
      "d.txt",
      "--alpha",
      "0.5",
      "--out",
      join(tmpdir(), "never"),
    ]);
    assert.equal(alpha.code, 1);
    assert.match(alpha.stderr, /--alpha weighs the distillation loss and needs --targets/);
  });
});
