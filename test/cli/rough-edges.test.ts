/** CLI and library rough edges: chats that outgrow the context, closed pipes, odd ways to start. */
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { describe, it } from "node:test";

const MAIN = new URL("../../src/cli/main.ts", import.meta.url).pathname;
const ROOT = new URL("../../", import.meta.url).pathname;

function cli(args: string[], input?: string) {
  const r = spawnSync(process.execPath, ["--import", "tsx", MAIN, ...args], { encoding: "utf8", input, timeout: 120_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

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

  it("generate into a pipe that closes early exits quietly", async () => {
    const child = spawn(process.execPath, ["--import", "tsx", MAIN, "generate", "--prompt", "And God", "-n", "200", "--seed", "1"], { cwd: ROOT });
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    await new Promise<void>((resolve) => child.stdout.once("data", () => resolve()));
    child.stdout.destroy();
    const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
    assert.equal(code, 0, stderr);
    assert.doesNotMatch(stderr, /EPIPE|Error/);
  });
});
