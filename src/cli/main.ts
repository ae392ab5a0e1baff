#!/usr/bin/env node
/** The `gemma-ts` command line: one file per command; errors become one clear line and exit code 1. */
import { CommanderError } from "commander";
import { GemmaError } from "../errors.js";
import { buildProgram } from "./program.js";

const program = buildProgram();

// `gemma-ts generate | head -c 5`: the reader left; stop quietly instead of an EPIPE stack trace.
process.stdout.on("error", (e: NodeJS.ErrnoException) => {
  if (e.code === "EPIPE") process.exit(0);
  throw e;
});

try {
  await program.parseAsync(process.argv);
} catch (e) {
  if (e instanceof CommanderError) {
    // --help and --version arrive here with exit code 0; usage errors were already printed.
    process.exitCode = e.exitCode;
  } else if (e instanceof GemmaError) {
    process.stderr.write(`gemma-ts: ${e.message}\n`);
    process.exitCode = 1;
  } else {
    const err = e as Error;
    process.stderr.write(`gemma-ts: unexpected error: ${err.message ?? String(e)}\n`);
    if (process.env["GEMMA_TS_DEBUG"]) process.stderr.write(`${err.stack}\n`);
    process.exitCode = 1;
  }
}
