/**
 * Every command shown in README.md and docs/ must run as written on a fresh clone. Each
 * `gemma-ts …` line is parsed by the real command definitions (flags, choices, numbers), with the
 * actions replaced so nothing heavy runs; npm scripts, scripts/ files and repository paths they
 * name must exist. The cheap ones also run for real, in CI and here.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import type { Command } from "commander";
import { buildProgram } from "../src/cli/program.js";

const ROOT = new URL("../", import.meta.url).pathname;
const DOCS = [
  "README.md",
  ...readdirSync(join(ROOT, "docs"))
    .filter((f) => f.endsWith(".md"))
    .map((f) => `docs/${f}`),
];
const SCRIPTS = (JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { scripts: Record<string, string> }).scripts;

interface DocCommand {
  file: string;
  line: string;
  words: string[];
}

/** Splits a shell command into words (quotes and backslashes; no expansion). */
function shellWords(text: string): string[] {
  const words: string[] = [];
  let word: string | null = null;
  let quote: string | null = null;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (quote) {
      if (ch === quote) quote = null;
      else word = (word ?? "") + ch;
    } else if (ch === "'" || ch === '"') {
      quote = ch;
      word ??= "";
    } else if (ch === "\\" && i + 1 < text.length) {
      word = (word ?? "") + text[++i];
    } else if (/\s/.test(ch)) {
      if (word !== null) words.push(word);
      word = null;
    } else {
      word = (word ?? "") + ch;
    }
  }
  if (word !== null) words.push(word);
  return words;
}

/**
 * Commands in the shell blocks of a Markdown file. Synopsis lines (a bare `gemma-ts …` with
 * [optional] parts and placeholders, as in README's command list) are not commands; runnable
 * ones are written `npx gemma-ts …`.
 */
function commandsIn(file: string): DocCommand[] {
  const text = readFileSync(join(ROOT, file), "utf8");
  const out: DocCommand[] = [];
  for (const block of text.matchAll(/```(sh|bash|)\n([\s\S]*?)```/g)) {
    const joined = block[2]!.replace(/\\\n\s*/g, " ");
    for (const raw of joined.split("\n")) {
      const line = raw
        .replace(/^\$ /, "")
        .replace(/\s+#\s.*$/, "")
        .trim();
      if (!line || line.startsWith("#") || line.startsWith("gemma-ts ")) continue;
      for (const part of line.split(/\s*(?:&&|;|\|)\s*/)) {
        const words = shellWords(part);
        while (words.length > 0 && /^[A-Z_]+=/.test(words[0]!)) words.shift();
        if (words.length > 0) out.push({ file, line, words });
      }
    }
  }
  return out;
}

const ALL = DOCS.flatMap(commandsIn);

/** Parses `args` with the real program, actions replaced: throws what commander throws for a bad flag. */
async function parseOnly(args: string[]): Promise<void> {
  const program = buildProgram();
  const quiet = (cmd: Command) => cmd.configureOutput({ writeErr: () => {}, writeOut: () => {} });
  quiet(program);
  for (const cmd of program.commands) quiet(cmd).action(() => {});
  await program.parseAsync(["node", "gemma-ts", ...args]);
}

describe("commands in README.md and docs/", () => {
  it("finds the documented commands", () => {
    const ours = ALL.filter((c) => c.words[0] === "npx" && c.words[1] === "gemma-ts");
    assert.ok(ours.length >= 12, `${ours.length} of ${ALL.length} commands`);
  });

  for (const c of ALL) {
    const [first, ...rest] = c.words;
    const args = first === "npx" && rest[0] === "gemma-ts" ? rest.slice(1) : null;
    if (args) {
      it(`${c.file}: ${c.line}`, async () => {
        await assert.doesNotReject(parseOnly(args), `${c.file}: "${c.line}" does not parse`);
        // Repository paths it names exist (data/ and runs/ are made by the documented scripts).
        for (const word of args)
          if (/^(test|scripts|models|docs|benchmarks)\//.test(word))
            assert.ok(existsSync(join(ROOT, word)), `${c.file}: ${word} does not exist`);
      });
    } else if (first === "npm" && rest[0] === "run") {
      it(`${c.file}: ${c.line}`, async () => {
        assert.ok(rest[1]! in SCRIPTS, `${c.file}: no npm script ${rest[1]}`);
        const dash = rest.indexOf("--");
        if (rest[1] === "bench" && dash > 0) await parseOnly(["bench", ...rest.slice(dash + 1)]);
      });
    } else if ((first === "sh" || first === "node") && c.words.some((w) => w.startsWith("scripts/") || w.startsWith("benchmarks/"))) {
      it(`${c.file}: ${c.line}`, () => {
        for (const w of c.words)
          if (/^(scripts|benchmarks)\//.test(w)) assert.ok(existsSync(join(ROOT, w)), `${c.file}: ${w} does not exist`);
      });
    }
  }

  it("the quick ones run as written", () => {
    const quick = ALL.filter(
      (c) =>
        c.words[0] === "npx" &&
        c.words[1] === "gemma-ts" &&
        ["generate", "info"].includes(c.words[2]!) &&
        // Not those that need a real model, the network, or what documented scripts make (data/, runs/).
        !c.words.some((w) => /^(~|\/|data\/|runs\/)/.test(w) || w.includes("google/")),
    );
    assert.ok(quick.length >= 3, quick.map((c) => c.line).join("\n"));
    for (const c of quick) {
      const r = spawnSync(process.execPath, ["--import", "tsx", join(ROOT, "src/cli/main.ts"), ...c.words.slice(2)], {
        cwd: ROOT,
        encoding: "utf8",
        timeout: 60_000,
      });
      assert.ok(r.status === 0 || /is outside the vocabulary/.test(r.stderr), `${c.file}: "${c.line}" failed: ${r.stderr}`);
    }
  });
});
