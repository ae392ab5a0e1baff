/** Running the `gemma-ts` command line from the sources, as a user would, for the CLI tests. */
import { execFile, spawnSync } from "node:child_process";
import { promisify } from "node:util";

/** src/cli/main.ts, run through tsx. */
export const MAIN = new URL("../../src/cli/main.ts", import.meta.url).pathname;

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `gemma-ts ...args` to the end, with `input` on stdin. */
export function cli(args: string[], input?: string, timeout = 120_000): CliResult {
  const r = spawnSync(process.execPath, ["--import", "tsx", MAIN, ...args], { encoding: "utf8", input, timeout });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const run = promisify(execFile);

/** The same without blocking, so that several runs can go at once. */
export async function cliAsync(args: string[]): Promise<CliResult> {
  try {
    const { stdout, stderr } = await run(process.execPath, ["--import", "tsx", MAIN, ...args], { encoding: "utf8", timeout: 120_000 });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}
