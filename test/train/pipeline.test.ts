/** The distillation pipeline as commands: train a teacher, store its targets, distil a student, use it. */
import assert from "node:assert/strict";
import { mkdirSync, readFileSync, truncateSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { CHAT_EXAMPLE_LINE, FIXTURES, tinyGemma2Json } from "../helpers/random-model.js";
import { writeCharTokenizer } from "../helpers/tokenizer.js";
import { cli } from "../helpers/cli.js";
import { tempDir } from "../helpers/temp.js";

const TEXT = join(FIXTURES, "text/genesis.txt");

describe("teacher-targets + train --targets + perplexity", () => {
  it("distils a student from a teacher trained here, end to end", () => {
    const dir = tempDir("gemma-ts-pipeline");
    const tok = join(dir, "tokenizer");
    mkdirSync(tok);
    const vocab = writeCharTokenizer(tok, readFileSync(TEXT, "utf8"));
    const shape = (d: number, layers: number, extra: Record<string, unknown> = {}) =>
      tinyGemma2Json({
        vocab_size: vocab,
        hidden_size: d,
        intermediate_size: 2 * d,
        num_attention_heads: 2,
        num_key_value_heads: 1,
        head_dim: d / 2,
        query_pre_attn_scalar: d / 2,
        num_hidden_layers: layers,
        sliding_window: 8,
        max_position_embeddings: 64,
        ...extra,
      });
    writeFileSync(join(dir, "teacher.json"), JSON.stringify(shape(32, 2)));
    writeFileSync(join(dir, "student.json"), JSON.stringify(shape(16, 1)));
    writeFileSync(join(dir, "other-vocab.json"), JSON.stringify(shape(16, 1, { vocab_size: vocab + 5 })));
    const common = ["--tokenizer", tok, "--data", TEXT, "--seq-len", "32", "--batch", "2", "--warmup", "2", "--lr", "0.003"];

    const teacher = cli([
      "train",
      "--config",
      join(dir, "teacher.json"),
      ...common,
      "--steps",
      "20",
      "--eval-every",
      "10",
      "--out",
      join(dir, "teacher"),
    ]);
    assert.equal(teacher.code, 0, teacher.stderr);
    assert.match(teacher.stderr, /step 20: train loss [\d.]+, validation loss [\d.]+ \(perplexity [\d.]+\)/);
    assert.equal(
      readFileSync(join(dir, "teacher", "train_log.jsonl"), "utf8")
        .trim()
        .split("\n").length,
      20,
    );

    const targetsArgs = [
      "teacher-targets",
      "--teacher",
      join(dir, "teacher"),
      "--data",
      TEXT,
      "--top-k",
      "8",
      "--seq-len",
      "32",
      "--backend",
      "js",
      "--out",
      join(dir, "targets"),
    ];
    const targets = cli(targetsArgs);
    assert.equal(targets.code, 0, targets.stderr);
    assert.match(targets.stderr, /wrote top-8 targets for \d+ sequences of 32 tokens/);
    const meta = JSON.parse(readFileSync(join(dir, "targets", "meta.json"), "utf8")) as { sequences: number };
    assert.equal(readFileSync(join(dir, "targets", "targets.bin")).length, meta.sequences * 32 * 8 * 8);
    // An interrupted run (cut mid-record) continues after the last complete record, to the same bytes.
    const complete = readFileSync(join(dir, "targets", "targets.bin"));
    truncateSync(join(dir, "targets", "targets.bin"), Math.floor(2.5 * 32 * 8 * 8));
    const again = cli(targetsArgs);
    assert.equal(again.code, 0, again.stderr);
    assert.ok(readFileSync(join(dir, "targets", "targets.bin")).equals(complete), "resumed targets equal an uninterrupted run's");

    /** The student for 10 steps into `out`, with `flags` (targets, alpha) or by next-token prediction. */
    const trainStudent = (out: string, flags: string[] = []) =>
      cli(["train", "--config", join(dir, "student.json"), ...common, "--steps", "10", ...flags, "--out", join(dir, out)]);
    const distil = (alpha: string) => ["--targets", join(dir, "targets"), "--alpha", alpha];
    const student = trainStudent("student", distil("0.5"));
    assert.equal(student.code, 0, student.stderr);
    assert.match(student.stderr, /by distillation \(alpha 0\.5, top-8 targets\)/);
    // The targets must reach the loss: the same run without them (or with another alpha) ends in
    // other weights, and the distillation term is logged and falls.
    const plain = trainStudent("student-plain");
    assert.equal(plain.code, 0, plain.stderr);
    const alphaOne = trainStudent("student-alpha1", distil("1"));
    assert.equal(alphaOne.code, 0, alphaOne.stderr);
    const weights = (run: string) => readFileSync(join(dir, run, "model.safetensors"));
    assert.ok(!weights("student").equals(weights("student-plain")), "distilled weights differ from next-token weights");
    assert.ok(!weights("student").equals(weights("student-alpha1")), "--alpha changes the weights");
    const log = (run: string) =>
      readFileSync(join(dir, run, "train_log.jsonl"), "utf8")
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l) as { trainLoss: number; nextTokenLoss: number; distillationLoss: number | null });
    const distilled = log("student-alpha1");
    assert.ok(
      distilled.every((l) => l.distillationLoss !== null && Math.abs(l.trainLoss - l.distillationLoss) < 1e-9),
      "alpha 1: the loss is the distillation term",
    );
    assert.ok(
      distilled.at(-1)!.distillationLoss! < distilled[0]!.distillationLoss! - 0.01,
      `distillation loss ${distilled[0]!.distillationLoss} → ${distilled.at(-1)!.distillationLoss}`,
    );
    assert.ok(log("student-plain").every((l) => l.distillationLoss === null && l.trainLoss === l.nextTokenLoss));

    const generated = cli(["generate", "--model", join(dir, "student"), "--prompt", "And God", "-n", "8", "--seed", "1"]);
    assert.equal(generated.code, 0, generated.stderr);
    assert.ok(generated.stdout.length > 0);
    const ppl = cli(["perplexity", "--model", join(dir, "teacher"), "--data", TEXT, "--json"]);
    assert.equal(ppl.code, 0, ppl.stderr);
    const result = JSON.parse(ppl.stdout) as { perplexity: number; tokens: number };
    assert.ok(result.perplexity > 1 && result.perplexity < vocab, `perplexity ${result.perplexity}`);
    assert.ok(result.tokens > 1000);

    writeFileSync(join(dir, "chat.jsonl"), CHAT_EXAMPLE_LINE);
    const finetuned = cli([
      "finetune",
      "--model",
      join(dir, "teacher"),
      "--data",
      join(dir, "chat.jsonl"),
      "--lora-rank",
      "2",
      "--steps",
      "3",
      "--batch",
      "1",
      "--out",
      join(dir, "adapter"),
    ]);
    assert.equal(finetuned.code, 0, finetuned.stderr);
    assert.match(finetuned.stderr, /saved the adapter to .*adapter/);
    const withAdapter = cli([
      "generate",
      "--model",
      join(dir, "teacher"),
      "--lora",
      join(dir, "adapter"),
      "--chat",
      "--prompt",
      "Who?",
      "-n",
      "4",
      "--seed",
      "1",
    ]);
    assert.equal(withAdapter.code, 0, withAdapter.stderr);
    writeFileSync(join(dir, "bad.jsonl"), "{not json}\n");
    const badChat = cli(["finetune", "--model", join(dir, "teacher"), "--data", join(dir, "bad.jsonl"), "--out", join(dir, "adapter2")]);
    assert.equal(badChat.code, 1);
    assert.match(badChat.stderr, /bad\.jsonl:1: /);

    const mismatched = cli([
      "train",
      "--config",
      join(dir, "other-vocab.json"),
      ...common,
      "--steps",
      "1",
      "--targets",
      join(dir, "targets"),
      "--out",
      join(dir, "bad"),
    ]);
    assert.equal(mismatched.code, 1);
    assert.match(mismatched.stderr, /targets were made by a teacher with a vocabulary of \d+ tokens, but the student has \d+/);
    const noData = cli([
      "train",
      "--config",
      join(dir, "student.json"),
      ...common.slice(0, 2),
      "--seq-len",
      "32",
      "--data",
      join(dir, "missing.txt"),
      "--out",
      join(dir, "bad2"),
    ]);
    assert.equal(noData.code, 1);
    assert.match(noData.stderr, /missing\.txt: no such data file/);
    const tooSmall = cli([
      "train",
      "--config",
      join(dir, "student.json"),
      "--tokenizer",
      tok,
      "--data",
      TEXT,
      "--seq-len",
      "128",
      "--out",
      join(dir, "bad3"),
    ]);
    assert.equal(tooSmall.code, 1);
    assert.match(tooSmall.stderr, /--seq-len 128 exceeds the student's max_position_embeddings 64/);
  });
});
