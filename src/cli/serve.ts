/** `gemma-ts serve`: an OpenAI-compatible HTTP endpoint for a checkpoint. */
import { existsSync } from "node:fs";
import { basename, resolve } from "node:path";
import { Command } from "commander";
import {
  addModelOptions,
  collect,
  hostOption,
  listenError,
  loadModelWithProgress,
  nonNegativeInt,
  parseNumber,
  portOption,
  positiveInt,
  type ModelFlags,
} from "./options.js";

interface ServeFlags extends ModelFlags {
  modelName?: string;
  host: string;
  port: number;
  parallel: number;
  maxQueue: number;
  apiKey?: string;
  maxBody: number;
  allowHost: string[];
}

export function serveCommand(): Command {
  return addModelOptions(
    new Command("serve").description(
      "serve the model over an OpenAI-compatible HTTP API (/v1/chat/completions, /v1/completions, /v1/models)",
    ),
    "checkpoint folder with tokenizer.json",
  )
    .option("--model-name <name>", "the model id clients use (default: the folder's name)")
    .addOption(hostOption("the server"))
    .addOption(portOption(8080))
    .option("--parallel <n>", "sequences generated at once", positiveInt("--parallel"), 1)
    .option("--max-queue <n>", "requests that may wait for a slot; more get 503", nonNegativeInt("--max-queue"), 64)
    .option("--api-key <key>", "require Authorization: Bearer <key> (or set GEMMA_TS_API_KEY)")
    .option(
      "--max-body <bytes>",
      "largest request body accepted",
      parseNumber("--max-body", (v) => Number.isInteger(v) && v >= 1024, "an integer >= 1024"),
      4 * 1024 * 1024,
    )
    .option(
      "--allow-host <name>",
      "also answer requests for this Host name (repeatable); a loopback-bound server otherwise answers only localhost, 127.0.0.1 and [::1]",
      collect,
      [] as string[],
    )
    .action(async (flags: ServeFlags) => {
      const model = await loadModelWithProgress(flags.model, flags);
      // A folder is named by its last part; a repo id by itself (without @revision).
      const modelName = flags.modelName ?? (existsSync(flags.model) ? basename(resolve(flags.model)) : flags.model.split("@")[0]!);
      const apiKey = flags.apiKey ?? process.env["GEMMA_TS_API_KEY"];
      // The HTTP stack loads with the command that serves, not with every command.
      const { startServer } = await import("../server/serve.js");
      const server = await startServer(model, {
        modelName,
        host: flags.host,
        port: flags.port,
        parallel: flags.parallel,
        maxQueue: flags.maxQueue,
        maxBodyBytes: flags.maxBody,
        allowHosts: flags.allowHost,
        ...(apiKey ? { apiKey } : {}),
        log: (line) => process.stderr.write(`${new Date().toISOString()} ${line}\n`),
      }).catch((e: NodeJS.ErrnoException) => {
        throw listenError(e, flags.host, flags.port);
      });
      process.stderr.write(
        `gemma-ts serving ${modelName} at ${server.url}/v1 (parallel ${flags.parallel}, queue ` +
          `${flags.maxQueue}${apiKey ? ", API key required" : ""})\n`,
      );
      let stopping = false;
      const stop = (signal: string) => {
        if (stopping) process.exit(1); // a second signal: leave now
        stopping = true;
        process.stderr.write(`${signal}: finishing requests in flight (up to 10 s), then exiting\n`);
        void server.close(10_000).then(() => process.exit(0));
      };
      process.on("SIGINT", () => stop("SIGINT"));
      process.on("SIGTERM", () => stop("SIGTERM"));
    });
}
