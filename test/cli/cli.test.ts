import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { before, describe, it } from "node:test";
import { FIXTURES } from "../helpers/random-model.js";
import { writeTokenizerModel } from "../helpers/tokenizer.js";
import type { BenchReportRow } from "../helpers/bench-report.js";
import { cli } from "../helpers/cli.js";
import { relaxedSimdSupported } from "../../src/backend/wasm/features.js";

describe("gemma-ts CLI", () => {
  let chatModel: string;
  before(async () => {
    chatModel = await writeTokenizerModel();
  });

  it("generate --prompt-ids prints the reference greedy tokens for tiny_a", () => {
    const fixture = JSON.parse(readFileSync(`${FIXTURES}tiny_a/fixture.json`, "utf8"));
    const r = cli([
      "generate",
      "--model",
      `${FIXTURES}tiny_a`,
      "--prompt-ids",
      fixture.input_ids.join(","),
      "-n",
      "16",
      "--temperature",
      "0",
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), fixture.greedy.generated_ids.join(" "));
    assert.match(r.stderr, /24 prompt tokens, 16 generated .* finish: length/);
  });

  it("generate and info work on a RecurrentGemma checkpoint", () => {
    const fixture = JSON.parse(readFileSync(`${FIXTURES}rg_tiny/fixture.json`, "utf8"));
    const r = cli(["generate", "--model", `${FIXTURES}rg_tiny`, "--prompt-ids", fixture.input_ids.join(","), "-n", "16", "-t", "0"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), fixture.greedy_tokens.join(" "));
    assert.match(
      cli(["info", "--model", `${FIXTURES}rg_tiny`]).stdout,
      /RecurrentGemma .*\n.*4 recurrent RG-LRU width 64, 2 local attention with window 8/,
    );
  });

  it("generate --prompt streams text, the same for the same seed", () => {
    const args = ["generate", "-m", chatModel, "-p", "Hello", "-n", "10", "--seed", "5"];
    const a = cli(args);
    assert.equal(a.code, 0, a.stderr);
    assert.ok(a.stdout.trim().length > 0);
    assert.equal(cli(args).stdout, a.stdout);
  });

  it("chat answers each line of piped input, keeping the conversation", () => {
    const r = cli(["chat", "-m", chatModel, "-n", "6", "-t", "0"], "Hi\nHow are you?\n/exit\n");
    assert.equal(r.code, 0, r.stderr);
    const stats = r.stderr.split("\n").filter((l) => l.includes("prompt tokens from cache"));
    assert.equal(stats.length, 2);
    assert.match(stats[0]!, / 0\/\d+ prompt tokens from cache/);
    assert.doesNotMatch(stats[1]!, / 0\/\d+ prompt tokens from cache/);
  });

  it("info reports config, parameters, dtypes and memory", () => {
    const r = cli(["info", "-m", `${FIXTURES}tiny_b_27blike`]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /Gemma 2/);
    assert.match(r.stdout, /6 \(3 local with window 5, 3 global\)/);
    assert.match(r.stdout, /scale 20\^-0\.5/);
    assert.match(r.stdout, /68 × F32/);
    const json = JSON.parse(cli(["info", "-m", `${FIXTURES}g1_tiny`, "--json"]).stdout);
    assert.equal(json.family, "gemma");
    assert.ok(json.memory.weightsBytes > 600_000);
  });

  it("has --help on every command", () => {
    for (const command of ["generate", "chat", "serve", "info", "perplexity"]) {
      const r = cli([command, "--help"]);
      assert.equal(r.code, 0);
      assert.match(r.stdout, /--model <dir\|file\|repo>/);
      assert.match(r.stdout.replace(/\s+/g, " "), /default: the bundled demo model/);
    }
    for (const command of ["bench", "train", "teacher-targets", "finetune", "pull", "web"])
      assert.equal(cli([command, "--help"]).code, 0, command);
  });

  it("fails with one clear line and a non-zero exit on bad input", () => {
    const cases: [string[], RegExp][] = [
      [["generate", "-m", "/no/such/model", "-p", "x"], /^gemma-ts: \/no\/such\/model: no such file or folder\n$/],
      [["generate", "-m", `${FIXTURES}tiny_a`, "-p", "x"], /^gemma-ts: a text prompt needs a tokenizer/],
      [["generate", "-m", `${FIXTURES}tiny_a`, "--prompt-ids", "2,x"], /--prompt-ids must be a comma-separated list/],
      [["generate", "-m", `${FIXTURES}tiny_a`, "--prompt-ids", "2", "--top-p", "7"], /--top-p must be in \(0, 1\], got "7"/],
      [["generate", "-m", `${FIXTURES}tiny_a`, "--prompt-ids", "2,9999"], /^gemma-ts: token id 9999 is outside the vocabulary of 512\n$/],
      [["train", "--tokenizer", "x"], /required option '--data <file>' not specified/],
      // Found inside an action, after Commander's own parsing: still printed, as one line.
      [["generate", "-m", `${FIXTURES}tiny_a`], /^gemma-ts: give exactly one of --prompt or --prompt-ids\n$/],
      [["web", "--models", "/no/such/dir"], /^gemma-ts: --models \/no\/such\/dir: no such folder\n$/],
      [["web", "--port", "99999"], /--port must be a port number, got "99999"/],
      [["web", "--host", "192.0.2.1", "--port", "0"], /^gemma-ts: --host 192\.0\.2\.1: not an address of this machine\n$/],
    ];
    for (const [args, message] of cases) {
      const r = cli(args);
      assert.equal(r.code, 1, `${args.join(" ")}: ${r.stderr}`);
      assert.match(r.stderr, message);
      assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
    }
  });
});

describe("gemma-ts generate --chat", () => {
  it("wraps the prompt in the chat template with a system prompt and honours --stop", async () => {
    const dir = await writeTokenizerModel();
    const base = ["generate", "-m", dir, "--chat", "--system", "Be brief.", "-p", "Hi", "-n", "12", "-t", "0"];
    const free = cli(base);
    assert.equal(free.code, 0, free.stderr);
    assert.match(free.stderr, /\[\d+ prompt tokens/);
    const text = free.stdout.replace(/\n$/, "");
    const stop = text.slice(3, 6);
    const stopped = cli([...base, "--stop", stop]);
    assert.equal(stopped.stdout.replace(/\n$/, ""), text.slice(0, text.indexOf(stop)));
    assert.match(stopped.stderr, /finish: stop/);
  });
});

describe("gemma-ts bench", () => {
  it("reports speed and memory per position; RecurrentGemma's state stays flat, Gemma's KV cache grows", () => {
    const r = cli([
      "bench",
      "--shape",
      "recurrentgemma-tiny",
      "--tests",
      "pp4,tg1@1k,tg1@8k,tg1@32k",
      "--threads",
      "1",
      "--no-bandwidth",
      "--json",
    ]);
    assert.equal(r.code, 0, r.stderr);
    const recurrent = JSON.parse(r.stdout) as { results: BenchReportRow[] };
    const decodeRows = recurrent.results.filter((row) => row.test.startsWith("tg1@"));
    assert.deepEqual(
      decodeRows.map((row) => row.position),
      [1024, 8192, 32768],
    );
    assert.ok(decodeRows.every((row) => row.tokensPerSecond > 0 && row.bandwidthFraction === null));
    assert.equal(new Set(decodeRows.map((row) => row.stateMB)).size, 1);
    assert.equal(recurrent.results[0]!.test, "pp4");
    const gemma = cli(["bench", "--shape", "tiny", "--tests", "pp4,tg1@100,tg1@20000", "--threads", "1", "--no-bandwidth", "--profile"]);
    assert.equal(gemma.code, 0, gemma.stderr);
    assert.match(gemma.stdout, /tg1@100 +[\d.]+ tokens\/s/);
    assert.match(gemma.stdout, /matmul bf16 \(output head\) +[\d.]+% +[\d.]+ s in 1 calls/);
    assert.match(gemma.stdout, /attention +[\d.]+% +[\d.]+ s in 4 calls/);
    // Each test's profile is its own pass: the next test's warm-up pass is not added to it.
    const promptBlock = gemma.stdout.slice(gemma.stdout.indexOf("pp4"), gemma.stdout.indexOf("tg1@100"));
    assert.match(promptBlock, /attention +[\d.]+% +[\d.]+ s in 4 calls/);
    assert.match(gemma.stdout, /skipped tg1@20000: beyond the 8192-token context/);
  });

  it("--json has one row per shape × weights × threads × test, with decode against the measured bandwidth", () => {
    const r = cli(["bench", "--shape", "tiny", "--weights", "f32,q8_0", "--threads", "1,2", "--tests", "pp8,tg4", "--json"]);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as {
      machine: string;
      bandwidthGBps: number;
      configs: { weights: string; threads: number; bandwidthGBps: number; weightBytes: number }[];
      results: BenchReportRow[];
    };
    assert.ok(out.bandwidthGBps > 0.1, `bandwidth ${out.bandwidthGBps}`);
    // Each decode row is set against its threads reading the weights between every 8 tokens:
    // fraction × that bandwidth / speed is the bytes a token reads, the same on 1 and 2 threads.
    for (const weights of ["f32", "q8_0"]) {
      const rows = out.results.filter((row) => row.test === "tg4" && row.weights === weights);
      const bytesPerToken = rows.map((row) => {
        assert.ok(row.bandwidthGBps! > 0.1, JSON.stringify(row));
        return (row.bandwidthFraction! * row.bandwidthGBps! * 1e9) / row.tokensPerSecond;
      });
      assert.equal(bytesPerToken.length, 2);
      // --json rounds fractions and speeds to 3 decimals and bandwidths to 2: a small one carries that
      // much relative error (two threads reading the tiny model's weights measure about 0.1 GB/s).
      const roundingError = rows.reduce(
        (sum, row) => sum + 0.0005 / row.bandwidthFraction! + 0.0005 / row.tokensPerSecond + 0.005 / row.bandwidthGBps!,
        0.005,
      );
      assert.ok(
        Math.abs(bytesPerToken[0]! / bytesPerToken[1]! - 1) < roundingError,
        `${weights}: ${bytesPerToken.join(" vs ")} bytes per token (allowed ${roundingError})`,
      );
      // What every tensor weighs, and the decode state on top.
      const config = out.configs.find((c) => c.weights === weights)!;
      assert.ok(bytesPerToken[0]! >= config.weightBytes * 0.99, `${bytesPerToken[0]} bytes per token, ${config.weightBytes} of weights`);
    }
    for (const config of out.configs) assert.ok(config.bandwidthGBps > 0.1);
    assert.match(out.machine, /node v/);
    assert.deepEqual(
      out.results.map((row) => `${row.weights}/${row.threads}/${row.test}`),
      ["f32/1/pp8", "f32/1/tg4", "f32/2/pp8", "f32/2/tg4", "q8_0/1/pp8", "q8_0/1/tg4", "q8_0/2/pp8", "q8_0/2/tg4"],
    );
    for (const row of out.results) {
      assert.equal(row.shape, "gemma2-tiny");
      assert.ok(row.tokensPerSecond > 0 && row.peakRssMB > 0);
      if (row.test === "tg4") assert.ok(row.bandwidthFraction! > 0, JSON.stringify(row));
      else assert.equal(row.bandwidthFraction, null);
      if (row.test !== "tg4") assert.equal(row.bandwidthGBps, null);
    }
    // The kernels that ran: relaxed SIMD where the engine has it, the plain kernels with --no-relaxed-simd.
    const kernelsOf = (flags: string[]) => {
      const run = cli([
        "bench",
        "--shape",
        "tiny",
        "--weights",
        "q8_0",
        "--threads",
        "1",
        "--tests",
        "tg1",
        "--no-bandwidth",
        "--json",
        ...flags,
      ]);
      assert.equal(run.code, 0, run.stderr);
      return (JSON.parse(run.stdout) as { configs: { kernels: string }[] }).configs[0]!.kernels;
    };
    assert.equal(kernelsOf([]), relaxedSimdSupported() ? "wasm-relaxed" : "wasm");
    assert.equal(kernelsOf(["--no-relaxed-simd"]), "wasm");
    const bad = cli(["bench", "--tests", "pp0"]);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /--tests must be a comma-separated list/);
  });
});

describe("gemma-ts CLI on a GGUF file", () => {
  it("generates from a GGUF with its own vocabulary as from the safetensors folder with tokenizer.json", async () => {
    const { encodeGgufModel } = await import("../../src/model/gguf-export.js");
    const { openCheckpointFolder } = await import("../../src/weights/checkpoint-folder.js");
    const { loadConfig } = await import("../../src/gemma.js");
    const { gemmaGgufVocab, GEMMA_TOKENIZER_DIR } = await import("../helpers/tokenizer.js");
    const { writeFileSync } = await import("node:fs");
    const { join } = await import("node:path");
    const dir = await writeTokenizerModel(33);
    const chatTemplate = (JSON.parse(readFileSync(join(GEMMA_TOKENIZER_DIR, "tokenizer_config.json"), "utf8")) as { chat_template: string })
      .chat_template;
    const ckpt = await openCheckpointFolder(dir);
    const config = await loadConfig(dir);
    const bytes = await encodeGgufModel(ckpt, config as Parameters<typeof encodeGgufModel>[1], {
      matrixType: "F32",
      vocabulary: { ...gemmaGgufVocab(), chatTemplate },
    });
    await ckpt.close();
    const gguf = join(dir, "model-f32.gguf");
    writeFileSync(gguf, bytes);

    for (const args of [
      ["-p", "The weather today is"],
      ["--chat", "-p", "Tell me a joke"],
    ]) {
      const fromFolder = cli(["generate", "-m", dir, ...args, "-n", "12", "--seed", "9"]);
      const fromGguf = cli(["generate", "-m", gguf, ...args, "-n", "12", "--seed", "9"]);
      assert.equal(fromGguf.code, 0, fromGguf.stderr);
      assert.ok(fromGguf.stdout.length > 0);
      assert.equal(fromGguf.stdout, fromFolder.stdout);
    }
    const info = cli(["info", "-m", gguf]);
    assert.equal(info.code, 0, info.stderr);
    assert.match(info.stdout, /tokenizer +from the GGUF metadata/);
    assert.match(info.stdout, /F32/);
  });
});
