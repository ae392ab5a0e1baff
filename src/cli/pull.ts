/** `gemma-ts pull REPO[@REV]`: download a model into the shared Hugging Face cache. */
import { Command } from "commander";
import { DownloadProgress, formatBytes } from "./progress.js";

export function pullCommand(): Command {
  return new Command("pull")
    .description("download a model from the Hugging Face Hub into the HF cache (resumable, verified); prints the snapshot folder")
    .argument("<repo>", "repo id, e.g. google/gemma-2-2b-it or google/gemma-2-2b-it@<revision>")
    .option("--file <name>", "fetch only this file (e.g. a .gguf) instead of config, tokenizer and safetensors")
    .option("--offline", "do not use the network; only check the cache (also HF_HUB_OFFLINE=1)", false)
    .action(async (repo: string, flags: { file?: string; offline: boolean }) => {
      const progress = new DownloadProgress();
      const started = Date.now();
      const { pullModel } = await import("../hub/pull.js");
      const result = await pullModel(repo, {
        ...(flags.file ? { file: flags.file } : {}),
        ...(flags.offline ? { offline: true } : {}),
        onProgress: (p) => progress.update(p),
      });
      const seconds = (Date.now() - started) / 1000;
      process.stderr.write(
        result.downloadedBytes > 0
          ? `downloaded ${formatBytes(result.downloadedBytes)} in ${result.files.length} files (${seconds.toFixed(1)} s) for ` +
              `${result.repo}@${result.commit.slice(0, 10)}\n`
          : `${result.repo}@${result.commit.slice(0, 10)} already in the cache: nothing downloaded\n`,
      );
      process.stdout.write(`${result.dir}\n`);
    });
}
