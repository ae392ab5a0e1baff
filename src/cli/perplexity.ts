/** `gemma-ts perplexity`: a model's perplexity on a text file, sliding over texts longer than the context. */
import { readFile } from "node:fs/promises";
import { Command } from "commander";
import { TokenizerError } from "../errors.js";
import { addModelOptions, loadModelWithProgress, positiveInt, type ModelFlags } from "./options.js";
import { ProgressBar } from "./progress.js";

export function perplexityCommand(): Command {
  return addModelOptions(new Command("perplexity").description("perplexity of a model on a text file"))
    .requiredOption("--data <file>", "UTF-8 text to score")
    .option("--context <n>", "tokens per window (default: the model's context)", positiveInt("--context"))
    .option("--stride <n>", "tokens the window advances by (default: half the context)", positiveInt("--stride"))
    .option("--json", "print the result as JSON", false)
    .action(async (flags: ModelFlags & { data: string; context?: number; stride?: number; json: boolean }) => {
      const [{ perplexity }, { DataError }] = await Promise.all([import("../eval/perplexity.js"), import("../train/data.js")]);
      const text = await readFile(flags.data, "utf8").catch((e: NodeJS.ErrnoException) => {
        throw new DataError(`${flags.data}: cannot read (${e.code ?? e.message})`);
      });
      if (text.trim().length === 0) throw new DataError(`${flags.data}: the data file is empty`);
      const model = await loadModelWithProgress(flags.model, flags);
      if (!model.tokenizer) throw new TokenizerError(`${flags.model} has no tokenizer to read the text with`);
      const ids = model.tokenizer.encode(text, { addBos: true, parseControlTokens: false });
      const context = Math.min(flags.context ?? model.config.maxPositions, model.config.maxPositions);
      const bar = new ProgressBar("scoring", process.stderr, (done, total) => `${done}/${total} windows`);
      const result = await perplexity(model, ids, {
        context,
        stride: flags.stride ?? Math.max(1, Math.floor(context / 2)),
        onProgress: (d, t) => bar.update(d, t),
      });
      bar.done();
      if (flags.json) process.stdout.write(`${JSON.stringify({ model: flags.model, data: flags.data, context, ...result })}\n`);
      else
        process.stdout.write(
          `perplexity ${result.perplexity.toFixed(3)} (mean NLL ${result.meanNll.toFixed(4)} nats over ${result.tokens} tokens, ` +
            `${result.windows} windows of ${context})\n`,
        );
    });
}
