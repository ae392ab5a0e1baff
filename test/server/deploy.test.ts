/**
 * docs/deploy.md's HAProxy configuration, run as written (ports replaced) in front of two
 * `gemma-ts serve` replicas on loopback: every turn of a conversation reaches one replica, whose
 * KV cache then serves the follow-up's prefix. Needs /usr/sbin/haproxy (apt-get install haproxy);
 * skipped without it except where GEMMA_TS_REQUIRE_PROXY=1 (CI).
 */
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { loadModel } from "../../src/gemma.js";
import { startServer, type RunningServer } from "../../src/server/serve.js";
import { socketExchange } from "../helpers/socket.js";
import { writeTokenizerModel } from "../helpers/tokenizer.js";
import { tempDir } from "../helpers/temp.js";

const HAPROXY = "/usr/sbin/haproxy";
const REQUIRED = process.env["GEMMA_TS_REQUIRE_PROXY"] === "1";
const DOC = new URL("../../docs/deploy.md", import.meta.url).pathname;

/** A free loopback port. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/** Each server's last health check in HAProxy's runtime API (`show stat`): L7OK passed, INI not run yet. */
async function checkStatuses(socket: string): Promise<Map<string, string>> {
  const csv = await socketExchange({ path: socket }, "show stat\n");
  const [header, ...rows] = csv.trim().split("\n");
  const columns = header!.replace(/^# /, "").split(",");
  const [proxy, server, check] = ["pxname", "svname", "check_status"].map((name) => columns.indexOf(name));
  const statuses = new Map<string, string>();
  for (const row of rows.map((r) => r.split(","))) {
    // "* L7OK": the next check is running; the status is still the last one's.
    if (row[proxy!] === "replicas" && row[server!]!.startsWith("replica")) statuses.set(row[server!]!, row[check!]!.replace(/^\* /, ""));
  }
  return statuses;
}

const skip = !existsSync(HAPROXY) && !REQUIRED ? `no HAProxy at ${HAPROXY} (apt-get install haproxy)` : false;

describe("docs/deploy.md: two replicas behind HAProxy, routed by conversation", { skip }, () => {
  const replicas: RunningServer[] = [];
  const handled: string[][] = [[], []];
  let proxy: ChildProcess;
  let url: string;
  let statsSocket: string;

  before(async () => {
    assert.ok(existsSync(HAPROXY), `HAProxy is required here (GEMMA_TS_REQUIRE_PROXY=1) but ${HAPROXY} is missing`);
    const model = await loadModel(await writeTokenizerModel());
    for (const i of [0, 1]) {
      // Each replica logs the conversation id of every request it answers (HAProxy's health checks aside).
      const log = (line: string) => {
        if (!line.includes(" /health ")) handled[i]!.push(line);
      };
      replicas.push(await startServer(model, { modelName: "gemma", port: await freePort(), log }));
    }
    const block = /```haproxy\n([\s\S]*?)```/.exec(readFileSync(DOC, "utf8"))![1]!;
    const front = await freePort();
    const config = block
      .replace("127.0.0.1:8080", `127.0.0.1:${front}`)
      .replace("127.0.0.1:8081", `127.0.0.1:${replicas[0]!.port}`)
      .replace("127.0.0.1:8082", `127.0.0.1:${replicas[1]!.port}`);
    const dir = tempDir("gemma-ts-haproxy");
    statsSocket = join(dir, "stats.sock");
    const path = join(dir, "gemma-ts.cfg");
    // The one addition to the documented configuration: a runtime API socket, to read the health checks.
    writeFileSync(path, config.replace("global\n", `global\n    stats socket ${statsSocket}\n`));
    proxy = spawn(HAPROXY, ["-f", path, "-db"], { stdio: ["ignore", "ignore", "pipe"] });
    url = `http://127.0.0.1:${front}`;
    for (let i = 0; ; i++) {
      const ok = await fetch(`${url}/health`)
        .then((r) => r.ok)
        .catch(() => false);
      if (ok) break;
      if (i > 100) throw new Error("HAProxy did not come up");
      await new Promise((r) => setTimeout(r, 50));
    }
  });
  after(async () => {
    proxy?.kill();
    for (const r of replicas) await r.close(0);
  });

  const chat = async (conversation: string, messages: { role: string; content: string }[]) => {
    const res = await fetch(`${url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-conversation-id": conversation },
      body: JSON.stringify({ model: "gemma", messages, max_tokens: 8, temperature: 0 }),
    });
    assert.equal(res.status, 200);
    return (await res.json()) as {
      choices: { message: { content: string } }[];
      usage: { prompt_tokens_details: { cached_tokens: number } };
    };
  };

  it("passes HAProxy's health check on both replicas (a failing one takes a replica out, then every request gets 503)", async () => {
    let statuses = await checkStatuses(statsSocket);
    // The first checks run within one check interval (2 s) of the start.
    for (let i = 0; [...statuses.values()].some((s) => s === "INI" || s === "") && i < 100; i++) {
      await new Promise((r) => setTimeout(r, 100));
      statuses = await checkStatuses(statsSocket);
    }
    assert.deepEqual(Object.fromEntries(statuses), { replica1: "L7OK", replica2: "L7OK" });
  });

  it("sends every turn of a conversation to one replica, whose cache then serves the follow-up's prefix", async () => {
    const conversations = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot"];
    for (const id of conversations) {
      const first = [{ role: "user", content: `Hello from ${id}, a somewhat long opening message to cache.` }];
      const reply = await chat(id, first);
      const before = handled.map((h) => h.length);
      const followUp = await chat(id, [
        ...first,
        { role: "assistant", content: reply.choices[0]!.message.content },
        { role: "user", content: "And then?" },
      ]);
      const served = handled.map((h, i) => h.length - before[i]!);
      // Only the replica holding the conversation answered (a log line can trail its request by a moment).
      assert.equal(served.filter((n) => n > 0).length, 1, `${id}: new log lines per replica ${served}`);
      assert.ok(
        followUp.usage.prompt_tokens_details.cached_tokens > 10,
        `${id}: cached ${followUp.usage.prompt_tokens_details.cached_tokens}`,
      );
    }
    // Both replicas took some conversations.
    assert.ok(
      handled.every((h) => h.length > 0),
      `requests per replica: ${handled.map((h) => h.length)}`,
    );
  });
});
