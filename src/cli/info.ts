/** `gemma-ts info`: config, parameter count, tensor dtypes and a memory estimate, without loading weights. */
import { basename } from "node:path";
import { Command } from "commander";
import { tokenizerFile } from "../tokenizer/load.js";
import { openCheckpoint } from "../model/open-checkpoint.js";
import { GgufCheckpoint } from "../model/gguf-checkpoint.js";
import { describeArchitecture, expectedTensorsFor, FAMILY_NAMES, fullStateBytes, parameterCountFor } from "../model/families.js";
import { checkLayerCount, validateTensors } from "../model/tensors.js";
import { Checkpoint } from "../weights/checkpoint.js";
import { resolveModelPath } from "../hub/resolve.js";
import { addModelSourceOptions } from "./options.js";
import { formatBytes } from "./progress.js";

function formatCount(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)}B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)}M`;
  return `${(n / 1e3).toFixed(1)}K`;
}

export function infoCommand(): Command {
  return addModelSourceOptions(new Command("info").description("show a checkpoint's configuration, size and memory needs"))
    .option("--json", "print as JSON", false)
    .action(async (flags: { model: string; json: boolean; offline: boolean }) => {
      const { checkpoint, config, tokenizer } = await openCheckpoint(
        await resolveModelPath(flags.model, flags.offline ? { offline: true } : {}),
      );
      try {
        const isGguf = checkpoint instanceof GgufCheckpoint;
        checkLayerCount(checkpoint, config.nLayers);
        const expected = expectedTensorsFor(config);
        const weightBytes = validateTensors(checkpoint, expected, config.family);
        const dtypes = new Map<string, number>();
        for (const name of expected.keys()) {
          const dtype = checkpoint.tensor(name)!.entry.dtype;
          dtypes.set(dtype, (dtypes.get(dtype) ?? 0) + 1);
        }
        const stateBytes = fullStateBytes(config);
        const report = {
          folder: checkpoint.dir,
          family: config.family,
          parameters: parameterCountFor(config),
          tensorDtypes: Object.fromEntries(dtypes),
          format: isGguf ? "gguf" : "safetensors",
          files: checkpoint instanceof Checkpoint ? checkpoint.files.length : 1,
          tokenizer: tokenizer !== null,
          memory: { weightsBytes: weightBytes, stateBytesAtFullContext: stateBytes, totalBytes: weightBytes + stateBytes },
          config,
        };
        if (flags.json) {
          process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
          return;
        }
        const state =
          config.family === "recurrent_gemma"
            ? `${formatBytes(stateBytes)} decode state (constant at any length)`
            : `${formatBytes(stateBytes)} KV cache at ${config.maxPositions} tokens`;
        const tokenizerFrom = isGguf ? "from the GGUF metadata" : basename((await tokenizerFile(checkpoint.dir)) ?? "tokenizer.json");
        const tokenizerText = report.tokenizer ? tokenizerFrom : "none (generate from token ids only)";
        const lines = [
          `model        ${FAMILY_NAMES[config.family]} (${formatCount(report.parameters)} parameters) in ${report.folder}`,
          ...describeArchitecture(config),
          `weights      ${[...dtypes].map(([d, n]) => `${n} × ${d}`).join(", ")} in ${report.files} file(s): ${formatBytes(weightBytes)}`,
          `tokenizer    ${tokenizerText}`,
          `memory       ${formatBytes(weightBytes)} weights + ${state} = ${formatBytes(weightBytes + stateBytes)}`,
        ];
        process.stdout.write(`${lines.join("\n")}\n`);
      } finally {
        await checkpoint.close();
      }
    });
}
