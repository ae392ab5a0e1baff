/** `train --resume`: exact continuation, one log line per step, and refusal of another run's settings or torn state. */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { FIXTURES, tinyStudentJson } from "../helpers/random-model.js";
import { writeCharTokenizer } from "../helpers/tokenizer.js";
import { cli, MAIN } from "../helpers/cli.js";
import { tempDir } from "../helpers/temp.js";

const TEXT = join(FIXTURES, "text/genesis.txt");

const logSteps = (dir: string) =>
  readFileSync(join(dir, "train_log.jsonl"), "utf8")
    .trim()
    .split("\n")
    .map((l) => (JSON.parse(l) as { step: number }).step);

describe("train --resume", () => {
  const dir = tempDir("gemma-ts-resume");
  const tok = join(dir, "tokenizer");
  mkdirSync(tok);
  const vocab = writeCharTokenizer(tok, readFileSync(TEXT, "utf8"));
  writeFileSync(join(dir, "student.json"), JSON.stringify(tinyStudentJson(vocab)));
  const args = (out: string, extra: string[] = []) => [
    "train",
    "--config",
    join(dir, "student.json"),
    "--tokenizer",
    tok,
    "--data",
    TEXT,
    "--seq-len",
    "16",
    "--batch",
    "1",
    "--steps",
    "400",
    "--save-every",
    "40",
    "--eval-every",
    "1000",
    "--backend",
    "js",
    "--out",
    out,
    ...extra,
  ];

  it("an interrupted run resumes to the uninterrupted run's weights, each step logged once", async () => {
    const straight = join(dir, "straight");
    assert.equal(cli(args(straight)).code, 0);

    const cut = join(dir, "cut");
    const child = spawn(process.execPath, ["--import", "tsx", MAIN, ...args(cut)], { stdio: "ignore" });
    // Kill it between two saves, once the log is past the first one.
    for (;;) {
      await new Promise((r) => setTimeout(r, 20));
      const lines = (() => {
        try {
          return logSteps(cut).length;
        } catch {
          return 0;
        }
      })();
      if (lines >= 50 && lines % 40 > 5) break;
      assert.ok(lines < 400, "the run ended before it could be interrupted");
    }
    child.kill("SIGKILL");
    await new Promise((r) => child.on("close", r));
    const resumed = cli(args(cut, ["--resume"]));
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.deepEqual(
      logSteps(cut),
      Array.from({ length: 400 }, (_, i) => i + 1),
      "every step once, in order",
    );
    assert.ok(
      readFileSync(join(cut, "model.safetensors")).equals(readFileSync(join(straight, "model.safetensors"))),
      "same weights as the uninterrupted run",
    );
  });

  it("refuses another run's settings, names a torn state file, and discards a half-written save", () => {
    const out = join(dir, "straight");
    const lr = cli(args(out, ["--resume", "--lr", "0.01"]));
    assert.equal(lr.code, 1);
    assert.match(lr.stderr, /--resume: --lr 0\.01 differs from the run's 0\.001 \(saved in .*trainer_state\.json\)/);
    const seq = cli(args(out, ["--resume", "--seq-len", "32"]));
    assert.match(seq.stderr, /--seq-len 32 differs from the run's 16/);
    const other = join(dir, "other.txt");
    const text = readFileSync(TEXT, "utf8");
    writeFileSync(other, text.slice(0, Math.floor(text.length * 0.8)));
    const data = cli(args(out, ["--resume", "--data", other]));
    assert.match(data.stderr, /--data is not the text this run was trained on/);

    // A save cut before its COMPLETE marker: the previous checkpoint stands.
    mkdirSync(join(out, ".saving"));
    writeFileSync(join(out, ".saving", "model.safetensors"), "torn");
    const finished = cli(args(out, ["--resume"]));
    assert.equal(finished.code, 0, finished.stderr);

    const state = join(out, "trainer_state.json");
    writeFileSync(state, readFileSync(state, "utf8").slice(0, 20));
    const torn = cli(args(out, ["--resume"]));
    assert.equal(torn.code, 1);
    assert.match(torn.stderr, /trainer_state\.json: not a valid trainer state \(.*\); the run cannot be resumed from it/);
  });
});
