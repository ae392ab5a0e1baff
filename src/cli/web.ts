/** `gemma-ts web`: serve the browser chat page and a folder of models on localhost. */
import { dirname, resolve } from "node:path";
import { existsSync, statSync } from "node:fs";
import { Command } from "commander";
import { BUNDLED_MODEL } from "../bundled.js";
import { hostOption, listenError, portOption, UsageError } from "./options.js";

interface WebFlags {
  models: string;
  host: string;
  port: number;
  isolation: boolean;
  quiet: boolean;
}

export function webCommand(): Command {
  return new Command("web")
    .description("serve the browser chat page (the model runs in the browser, on WebAssembly) and the models of a folder under /models/")
    .option("--models <dir>", "folder of .gguf files and checkpoint folders to offer the page", dirname(BUNDLED_MODEL))
    .addOption(hostOption("the page"))
    .addOption(portOption(8081))
    .option("--no-isolation", "leave out the COOP/COEP headers (the page then runs on one thread)")
    .option("--quiet", "do not log model file requests", false)
    .action(async (flags: WebFlags) => {
      const modelsDir = resolve(flags.models);
      if (!existsSync(modelsDir) || !statSync(modelsDir).isDirectory()) throw new UsageError(`--models ${flags.models}: no such folder`);
      const { startWebServer } = await import("../server/web.js");
      const server = await startWebServer({
        modelsDir,
        host: flags.host,
        port: flags.port,
        isolate: flags.isolation,
        ...(flags.quiet ? {} : { log: (line: string) => process.stderr.write(`${new Date().toISOString()} ${line}\n`) }),
      }).catch((e: NodeJS.ErrnoException) => {
        throw listenError(e, flags.host, flags.port);
      });
      process.stdout.write(
        `gemma-ts web: open ${server.url} (models from ${modelsDir}${flags.isolation ? "" : "; not cross-origin isolated: one thread"})\n`,
      );
      const stop = () => void server.close().then(() => process.exit(0));
      process.once("SIGINT", stop);
      process.once("SIGTERM", stop);
    });
}
