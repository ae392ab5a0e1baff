/** `gemma-ts generate`: stream a continuation of a prompt (or a chat reply with --chat) to stdout. */
import { Command, InvalidArgumentError } from "commander";
import type { GenerationInput } from "../gemma.js";
import {
  addModelOptions,
  addSamplingOptions,
  generateOptionsFrom,
  loadModelWithProgress,
  UsageError,
  type ModelFlags,
  type SamplingFlags,
} from "./options.js";

interface GenerateFlags extends SamplingFlags, ModelFlags {
  prompt?: string;
  promptIds?: number[];
  chat: boolean;
  system?: string;
}

function parseIds(raw: string): number[] {
  const ids = raw
    .split(/[\s,]+/)
    .filter(Boolean)
    .map(Number);
  if (ids.length === 0 || !ids.every((id) => Number.isInteger(id) && id >= 0)) {
    throw new InvalidArgumentError(`--prompt-ids must be a comma-separated list of token ids, got "${raw}"`);
  }
  return ids;
}

export function generateCommand(): Command {
  const cmd = addModelOptions(new Command("generate").description("generate text from a prompt, streaming it to stdout"))
    .option("-p, --prompt <text>", "prompt text (BOS is added)")
    .option("--prompt-ids <ids>", "prompt as token ids, e.g. 2,651,1234 (for checkpoints without a tokenizer)", parseIds)
    .option("--chat", "wrap the prompt in the chat template as a user turn", false)
    .option("--system <text>", "system prompt (with --chat)");
  addSamplingOptions(cmd, 256);
  return cmd.action(async (flags: GenerateFlags) => {
    if ((flags.prompt === undefined) === (flags.promptIds === undefined)) {
      throw new UsageError("give exactly one of --prompt or --prompt-ids");
    }
    const model = await loadModelWithProgress(flags.model, flags);
    let input: GenerationInput;
    if (flags.promptIds) input = flags.promptIds;
    else if (flags.chat)
      input = [
        ...(flags.system ? [{ role: "system" as const, content: flags.system }] : []),
        { role: "user" as const, content: flags.prompt! },
      ];
    else input = flags.prompt!;

    const controller = new AbortController();
    const onSigint = () => controller.abort();
    process.once("SIGINT", onSigint);
    const generation = model.generate(input, { ...generateOptionsFrom(flags), signal: controller.signal });
    const started = performance.now();
    for await (const token of generation) {
      process.stdout.write(model.tokenizer ? token.text : `${token.id} `);
    }
    process.removeListener("SIGINT", onSigint);
    process.stdout.write("\n");
    const seconds = (performance.now() - started) / 1000;
    process.stderr.write(
      `[${generation.promptTokens} prompt tokens, ${generation.completionTokens} generated in ${seconds.toFixed(2)}s, ` +
        `${(generation.completionTokens / seconds).toFixed(2)} tokens/s, finish: ${generation.finishReason}]\n`,
    );
  });
}
