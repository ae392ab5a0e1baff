/** CLI and library rough edges: chats that outgrow the context, closed pipes, odd ways to start. */
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { BUNDLED_MODEL } from "../../src/bundled.js";
import { CHAT_EXAMPLE_LINE, tinyStudentJson } from "../helpers/random-model.js";
import { cli, MAIN } from "../helpers/cli.js";
import { tempDir } from "../helpers/temp.js";

const ROOT = new URL("../../", import.meta.url).pathname;

describe("CLI rough edges", () => {
  it("chat: a conversation that outgrows the context drops its oldest turns and keeps answering", () => {
    const lines = ["And God said", "Who was Moses?", "Tell me of Egypt", "And the LORD spake", "What of Abraham"];
    const r = cli(["chat", "--seed", "1"], `${lines.join("\n")}\n`);
    assert.equal(r.code, 0, r.stderr);
    const stats = r.stderr.split("\n").filter((l) => /^\[\d+ tokens, /.test(l));
    assert.equal(stats.length, lines.length, r.stderr);
    assert.match(r.stderr, /\[the conversation outgrew the 256-token context: dropped its \d+ oldest exchange\(s\)\]/);
    // A default reply may use at most half of the bundled model's 256-token context.
    for (const line of stats) assert.ok(Number(/^\[(\d+) tokens/.exec(line)![1]) <= 128, line);
  });

  it("chat: a turn too long for the context is reported and the chat goes on", () => {
    const r = cli(["chat", "--seed", "1", "-n", "4"], `${"And God said, Let there be light. ".repeat(80)}\nAnd God said\n`);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /gemma-ts: the prompt has \d+ tokens; the model's context holds 256/);
    assert.equal(r.stderr.split("\n").filter((l) => /^\[\d+ tokens, /.test(l)).length, 1);
  });

  it("chat in a terminal: after a turn too long for the context, Ctrl-C still ends the chat", {
    skip: !existsSync("/usr/bin/script") && "needs script(1) for a terminal",
  }, async () => {
    // script(1) gives the chat a pseudo-terminal, so readline runs in terminal mode as for a user.
    const command = `${process.execPath} --import tsx ${MAIN} chat --seed 1 -n 8`;
    const child = spawn("/usr/bin/script", ["-qfec", command, "/dev/null"], { cwd: ROOT });
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    const until = async (pattern: RegExp) => {
      const t0 = Date.now();
      while (!pattern.test(out)) {
        assert.ok(Date.now() - t0 < 60_000, `waiting for ${pattern}: ${out.slice(-300)}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    try {
      await until(/> /);
      child.stdin.write("And God said\r");
      await until(/tokens\/s/);
      child.stdin.write(`${"And God said, Let there be light. ".repeat(80)}\r`);
      await until(/context holds 256/);
      child.stdin.write("\x03");
      const code = await Promise.race([new Promise((r) => child.on("close", r)), new Promise((r) => setTimeout(() => r("hung"), 10_000))]);
      assert.equal(code, 0);
    } finally {
      child.kill("SIGKILL");
    }
  });

  it("generate into a pipe that closes early exits quietly", async () => {
    const child = spawn(process.execPath, ["--import", "tsx", MAIN, "generate", "--prompt", "And God", "-n", "200", "--seed", "1"], {
      cwd: ROOT,
    });
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    await new Promise<void>((resolve) => child.stdout.once("data", () => resolve()));
    child.stdout.destroy();
    const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
    assert.equal(code, 0, stderr);
    assert.doesNotMatch(stderr, /EPIPE|Error/);
  });

  it("a script run as node --input-type=module -e loads the bundled model (loadModel() with no argument) on worker threads", () => {
    const gemma = new URL("../../src/gemma.ts", import.meta.url).href;
    const script = `import { loadModel } from ${JSON.stringify(gemma)}; const m = await loadModel(undefined, { threads: 2 }); console.log(JSON.stringify(await m.generate("And God", { maxTokens: 4, seed: 1 }).complete())); process.exit(0);`;
    const r = spawnSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], { encoding: "utf8", timeout: 120_000 });
    assert.equal(r.status, 0, r.stderr);
    assert.ok(JSON.parse(r.stdout).length > 0);
  });

  it("finetune takes a GGUF model; info names the tokenizer file a folder really has", () => {
    const dir = tempDir("gemma-ts-ft-gguf");
    writeFileSync(join(dir, "chat.jsonl"), CHAT_EXAMPLE_LINE);
    const ft = cli([
      "finetune",
      "--model",
      BUNDLED_MODEL,
      "--data",
      join(dir, "chat.jsonl"),
      "--lora-rank",
      "2",
      "--steps",
      "2",
      "--batch",
      "1",
      "--out",
      join(dir, "adapter"),
    ]);
    assert.equal(ft.code, 0, ft.stderr);
    const withAdapter = cli(["perplexity", "--lora", join(dir, "adapter"), "--data", join(dir, "chat.jsonl"), "--json"]);
    const without = cli(["perplexity", "--data", join(dir, "chat.jsonl"), "--json"]);
    assert.equal(withAdapter.code, 0, withAdapter.stderr);
    assert.notEqual(JSON.parse(withAdapter.stdout).perplexity, JSON.parse(without.stdout).perplexity, "--lora changes the model");

    // A trained folder whose tokenizer is tokenizer.gguf.
    const folder = join(dir, "student");
    const tok = join(dir, "tok");
    mkdirSync(tok);
    writeFileSync(join(dir, "text.txt"), "In the beginning God created the heaven and the earth. ".repeat(40));
    writeFileSync(join(dir, "student.json"), JSON.stringify(tinyStudentJson(4000)));
    const trained = cli([
      "train",
      "--config",
      join(dir, "student.json"),
      "--tokenizer",
      BUNDLED_MODEL,
      "--data",
      join(dir, "text.txt"),
      "--seq-len",
      "16",
      "--batch",
      "1",
      "--steps",
      "2",
      "--backend",
      "js",
      "--out",
      folder,
    ]);
    assert.equal(trained.code, 0, trained.stderr);
    assert.match(cli(["info", "--model", folder]).stdout, /^tokenizer +tokenizer\.gguf$/m);
  });
});
