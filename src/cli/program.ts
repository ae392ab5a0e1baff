/** The `gemma-ts` program: every command, with errors thrown (exitOverride) instead of exiting. */
import { readFileSync } from "node:fs";
import { Command } from "commander";
import { benchCommand } from "./bench.js";
import { chatCommand } from "./chat.js";
import { generateCommand } from "./generate.js";
import { infoCommand } from "./info.js";
import { pullCommand } from "./pull.js";
import { perplexityCommand } from "./perplexity.js";
import { serveCommand } from "./serve.js";
import { webCommand } from "./web.js";
import { finetuneCommand } from "./finetune.js";
import { teacherTargetsCommand } from "./teacher-targets.js";
import { trainCommand } from "./train.js";

/** package.json's version (two levels up from both src/cli and dist/cli). */
const VERSION = (JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string }).version;

export function buildProgram(): Command {
  const program = new Command("gemma-ts")
    .description(
      "Run, serve, evaluate and train Google's Gemma 2, Gemma 1 and RecurrentGemma models from Hugging Face checkpoints, GGUF files or " +
        "repo ids",
    )
    .version(VERSION)
    .exitOverride()
    .configureOutput({ outputError: (message, write) => write(message) });
  for (const cmd of [
    generateCommand(),
    chatCommand(),
    serveCommand(),
    webCommand(),
    pullCommand(),
    infoCommand(),
    benchCommand(),
    perplexityCommand(),
    trainCommand(),
    teacherTargetsCommand(),
    finetuneCommand(),
  ])
    program.addCommand(cmd.exitOverride());
  return program;
}
