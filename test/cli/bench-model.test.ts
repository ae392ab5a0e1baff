/**
 * `gemma-ts bench --model FILE.gguf [--compare llama-bench=PATH]`: a real file timed instead of
 * synthetic weights, and llama.cpp's llama-bench run beside it. CI has no llama.cpp, so a stand-in
 * script answers as llama-bench does (its `-o json` report) and records the arguments it got.
 */
import assert from "node:assert/strict";
import { chmodSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { loadConfig } from "../../src/gemma.js";
import { encodeGgufModel } from "../../src/model/gguf-export.js";
import { openCheckpointFolder } from "../../src/weights/checkpoint-folder.js";
import type { BenchReportRow } from "../helpers/bench-report.js";
import { cli } from "../helpers/cli.js";
import { FIXTURES } from "../helpers/random-model.js";
import { tempDir } from "../helpers/temp.js";

interface Report {
  model: string | null;
  llamaCpp: { commit: string; cpu: string } | null;
  configs: { weights: string; weightBytes: number; kernels: string }[];
  results: BenchReportRow[];
}

/** A stand-in llama-bench: logs its arguments, prints 100 tokens/s per thread for prompts, 10 for decode. */
const FAKE_LLAMA_BENCH = `#!/usr/bin/env node
const fs = require("node:fs");
const args = process.argv.slice(2);
fs.appendFileSync(process.env.FAKE_LOG, JSON.stringify(args) + "\\n");
if (process.env.FAKE_FAIL) { console.error("error: failed to load model"); process.exit(1); }
const value = (flag) => args[args.indexOf(flag) + 1];
const threads = Number(value("-t"));
const rows = [];
for (const p of value("-p").split(",").map(Number).filter((n) => n > 0))
  rows.push({ build_commit: "abc1234", cpu_info: "Fake CPU", model_size: 1000, n_prompt: p, n_gen: 0, n_threads: threads, avg_ts: 100 * threads });
for (const n of value("-n").split(",").map(Number).filter((n) => n > 0))
  rows.push({ build_commit: "abc1234", cpu_info: "Fake CPU", model_size: 1000, n_prompt: 0, n_gen: n, n_threads: threads, avg_ts: 10 * threads });
console.log(JSON.stringify(rows, null, 2));
`;

describe("gemma-ts bench --model and --compare", () => {
  let dir: string;
  let gguf: string;
  let fake: string;
  before(async () => {
    dir = tempDir("gemma-ts-bench-model");
    gguf = join(dir, "tiny-a-q8_0.gguf");
    const ckpt = await openCheckpointFolder(`${FIXTURES}tiny_a`);
    const config = await loadConfig(`${FIXTURES}tiny_a`);
    writeFileSync(gguf, await encodeGgufModel(ckpt, config as Parameters<typeof encodeGgufModel>[1], { matrixType: "Q8_0" }));
    await ckpt.close();
    fake = join(dir, "llama-bench");
    writeFileSync(fake, FAKE_LLAMA_BENCH);
    chmodSync(fake, 0o755);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const bench = (args: string[], env: Record<string, string> = {}) => {
    const log = join(dir, `calls-${Math.random().toString(36).slice(2)}.jsonl`);
    Object.assign(process.env, { FAKE_LOG: log }, env);
    const r = cli(["bench", "--model", gguf, "--no-bandwidth", "--json", ...args]);
    for (const key of Object.keys(env)) delete process.env[key];
    const calls = (() => {
      try {
        return readFileSync(log, "utf8")
          .trim()
          .split("\n")
          .map((l) => JSON.parse(l) as string[]);
      } catch {
        return [];
      }
    })();
    return { ...r, calls };
  };

  it("times the file as stored, or quantized on load with --weights", () => {
    const r = bench(["--threads", "1", "--tests", "pp4,tg2", "--weights", "stored,q4_0"]);
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout) as Report;
    assert.equal(report.model, gguf);
    assert.deepEqual(
      report.results.map((row) => `${row.shape}/${row.weights}/${row.test}`),
      ["tiny-a-q8_0.gguf/stored/pp4", "tiny-a-q8_0.gguf/stored/tg2", "tiny-a-q8_0.gguf/q4_0/pp4", "tiny-a-q8_0.gguf/q4_0/tg2"],
    );
    assert.ok(report.results.every((row) => row.tokensPerSecond > 0 && row.llamaCpp === undefined));
    const [stored, q4] = report.configs;
    // The Q8_0 file's matrices, quantized to Q4_0 on load: about 4.5/8.5 of the bytes.
    assert.ok(q4!.weightBytes > 0.4 * stored!.weightBytes && q4!.weightBytes < 0.7 * stored!.weightBytes, JSON.stringify(report.configs));
    assert.equal(r.calls.length, 0, "no llama-bench without --compare");
  });

  it("--compare runs llama-bench on the same file and threads after each of ours, and reports the ratio per test", () => {
    const r = bench(["--compare", `llama-bench=${fake}`, "--threads", "2,1", "--tests", "pp8,tg3,tg2@20", "--rounds", "2"]);
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout) as Report;
    assert.deepEqual(report.llamaCpp, { commit: "abc1234", cpu: "Fake CPU" });
    // Two rounds × two thread counts, alternating with ours, each llama-bench call on our file and tests.
    assert.deepEqual(
      r.calls.map((args) => args.join(" ")),
      [2, 2, 1, 1].map((t) => `-m ${gguf} -t ${t} -p 8 -n 3 -r 3 -o json`),
    );
    for (const row of report.results) {
      if (row.test === "tg2@20") {
        assert.equal(row.llamaCpp, null, "llama-bench has no decode-at-position test");
        assert.equal(row.ratio, null);
        continue;
      }
      const theirs = (row.test === "pp8" ? 100 : 10) * row.threads;
      assert.equal(row.llamaCpp!.tokensPerSecond, theirs);
      assert.ok(Math.abs(row.ratio! - row.tokensPerSecond / theirs) < 1e-3 * row.ratio!, JSON.stringify(row));
    }
  });

  it("refuses what it cannot compare, and says why llama-bench failed", () => {
    const cases: [string[], RegExp][] = [
      [["--compare", `llama-bench=${fake}`, "--shape", "tiny"], /--shape and --model are alternatives/],
      [["--compare", `llama.cpp=${fake}`], /--compare must be llama-bench=PATH/],
      [["--rounds", "3"], /--rounds alternates gemma-ts with llama-bench: it needs --compare/],
      [["--compare", `llama-bench=${fake}`, "--rounds", "0"], /--rounds must be 1 to 100, got "0"/],
      [["--weights", "bf16"], /with --model, --weights must be among stored, q8_0, q4_0/],
    ];
    for (const [args, message] of cases) {
      const r = bench(["--threads", "1", "--tests", "tg1", ...args]);
      assert.notEqual(r.code, 0, args.join(" "));
      assert.match(r.stderr, message);
    }
    const noModel = cli(["bench", "--shape", "tiny", "--compare", `llama-bench=${fake}`]);
    assert.match(noModel.stderr, /--compare needs --model FILE\.gguf/);
    const failing = bench(["--compare", `llama-bench=${fake}`, "--threads", "1", "--tests", "tg1"], { FAKE_FAIL: "1" });
    assert.notEqual(failing.code, 0);
    assert.match(failing.stderr, /llama-bench failed \(exit 1\): error: failed to load model/);
    const missing = bench(["--compare", `llama-bench=${join(dir, "nowhere")}`, "--threads", "1", "--tests", "tg1"]);
    assert.match(missing.stderr, /cannot run llama-bench at .*nowhere \(ENOENT\)/);
  });
});
