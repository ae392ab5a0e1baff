/** `gemma-ts info`: config, parameter count, tensor dtypes and a memory estimate, without loading weights. */
import { Command } from "commander";
import { parameterCount } from "../config.js";
import { loadConfig } from "../gemma.js";
import { KvCache } from "../model/kv-cache.js";
import { expectedTensors, validateCheckpoint } from "../model/weights.js";
import { hasTokenizer } from "../tokenizer/load.js";
import { Checkpoint } from "../weights/checkpoint.js";
import { resolveModelPath } from "../hub/resolve.js";
import { addModelOptions } from "./options.js";
import { formatBytes } from "./progress.js";

function formatCount(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)}B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)}M`;
  return `${(n / 1e3).toFixed(1)}K`;
}

export function infoCommand(): Command {
  return addModelOptions(new Command("info").description("show a checkpoint's configuration, size and memory needs"))
    .option("--json", "print as JSON", false)
    .action(async (flags: { model: string; json: boolean; offline: boolean }) => {
      const checkpoint = await Checkpoint.open(await resolveModelPath(flags.model, flags.offline ? { offline: true } : {}));
      try {
        const config = await loadConfig(checkpoint.dir);
        const weightBytes = validateCheckpoint(checkpoint, config);
        const dtypes = new Map<string, number>();
        for (const name of expectedTensors(config).keys()) {
          const dtype = checkpoint.tensor(name)!.entry.dtype;
          dtypes.set(dtype, (dtypes.get(dtype) ?? 0) + 1);
        }
        // KV cache at full context, f32: global layers hold every position, local layers the window.
        const kvBytes = new KvCache(config).layers.reduce((sum, l) => sum + 2 * 4 * l.ringSize * l.rowWidth, 0);
        const report = {
          folder: checkpoint.dir,
          family: config.family,
          parameters: parameterCount(config),
          tensorDtypes: Object.fromEntries(dtypes),
          files: checkpoint.files.length,
          tokenizer: await hasTokenizer(checkpoint.dir),
          memory: { weightsBytes: weightBytes, kvCacheBytesAtFullContext: kvBytes, totalBytes: weightBytes + kvBytes },
          config,
        };
        if (flags.json) {
          process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
          return;
        }
        const c = config;
        const local = c.layerTypes.filter((t) => t === "local").length;
        const lines = [
          `model        ${c.family === "gemma2" ? "Gemma 2" : "Gemma 1"} (${formatCount(report.parameters)} parameters) in ${report.folder}`,
          `layers       ${c.nLayers} (${local} local with window ${c.slidingWindow ?? "-"}, ${c.nLayers - local} global)`,
          `dims         d_model ${c.dModel}, heads ${c.nHeads}/${c.nKvHeads} kv, head_dim ${c.headDim}, ffn ${c.ffnDim}, vocab ${c.vocabSize}`,
          `attention    scale ${c.queryPreAttnScalar}^-0.5, soft-caps ${c.attnSoftcap ?? "none"}/${c.finalSoftcap ?? "none"}, context ${c.maxPositions}`,
          `weights      ${[...dtypes].map(([d, n]) => `${n} × ${d}`).join(", ")} in ${report.files} file(s): ${formatBytes(weightBytes)}`,
          `tokenizer    ${report.tokenizer ? "tokenizer.json" : "none (generate from token ids only)"}`,
          `memory       ${formatBytes(weightBytes)} weights + ${formatBytes(kvBytes)} KV cache at ${c.maxPositions} tokens = ${formatBytes(weightBytes + kvBytes)}`,
        ];
        process.stdout.write(`${lines.join("\n")}\n`);
      } finally {
        await checkpoint.close();
      }
    });
}
