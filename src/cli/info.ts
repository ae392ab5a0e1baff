/** `gemma-ts info`: config, parameter count, tensor dtypes and a memory estimate, without loading weights. */
import { basename } from "node:path";
import { Command } from "commander";
import { tokenizerFile } from "../tokenizer/load.js";
import { openCheckpoint } from "../model/open-checkpoint.js";
import { GgufCheckpoint } from "../model/gguf-checkpoint.js";
import {
  activeParameterCountFor,
  describeArchitecture,
  expectedTensorsFor,
  FAMILY_NAMES,
  fullStateBytes,
  parameterCountFor,
  skippedTensorsFor,
} from "../model/families.js";
import { PRESETS } from "../model/gemma/config.js";
import { RECURRENT_PRESETS } from "../model/recurrent-gemma/config.js";
import type { ModelConfig } from "../model/causal-lm.js";
import { InvalidArgumentError } from "commander";
import { checkLayerCount, validateTensors } from "../model/tensors.js";
import { textModelTensors } from "../model/gemma/text-tensors.js";
import { Checkpoint } from "../weights/checkpoint.js";
import { resolveModelPath } from "../hub/resolve.js";
import { addModelSourceOptions } from "./options.js";
import { formatBytes } from "./progress.js";

function formatCount(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)}B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)}M`;
  return `${(n / 1e3).toFixed(1)}K`;
}

const ALL_PRESETS: Record<string, ModelConfig> = { ...PRESETS, ...RECURRENT_PRESETS };

function parsePreset(name: string): string {
  if (name !== "all" && !(name in ALL_PRESETS))
    throw new InvalidArgumentError(`unknown preset; one of: all, ${Object.keys(ALL_PRESETS).join(", ")}`);
  return name;
}

/** Parameters (total, and active per token where they differ) in words. */
function parametersText(config: ModelConfig): string {
  const total = parameterCountFor(config);
  const active = activeParameterCountFor(config);
  return active === total
    ? `${formatCount(total)} parameters`
    : `${formatCount(total)} parameters, ${formatCount(active)} active per token`;
}

/** A published configuration described without any weights. */
function presetReport(name: string, config: ModelConfig) {
  return {
    preset: name,
    family: config.family,
    parameters: parameterCountFor(config),
    activeParameters: activeParameterCountFor(config),
    stateBytesAtFullContext: fullStateBytes(config),
    config,
  };
}

function stateText(config: ModelConfig): string {
  return config.family === "recurrent_gemma" ? "decode state" : `KV cache (f32) at ${config.maxPositions} tokens`;
}

function printPresets(name: string, json: boolean): void {
  const names = name === "all" ? Object.keys(ALL_PRESETS) : [name];
  const reports = names.map((n) => presetReport(n, ALL_PRESETS[n]!));
  if (json) {
    process.stdout.write(`${JSON.stringify(name === "all" ? reports : reports[0], null, 2)}\n`);
    return;
  }
  for (const report of reports) {
    const lines = [
      `preset       ${report.preset}: ${FAMILY_NAMES[report.family]} (${parametersText(report.config)})`,
      ...describeArchitecture(report.config),
      `memory       ${formatBytes(report.stateBytesAtFullContext)} ${stateText(report.config)}`,
    ];
    process.stdout.write(`${lines.join("\n")}\n${names.length > 1 ? "\n" : ""}`);
  }
}

export function infoCommand(): Command {
  return addModelSourceOptions(
    new Command("info").description("show a checkpoint's (or a published preset's) configuration, size and memory needs"),
  )
    .option("--json", "print as JSON", false)
    .option("--preset <name>", "describe a published configuration instead of a checkpoint (all: every preset)", parsePreset)
    .action(async (flags: { model: string; json: boolean; offline: boolean; preset?: string }) => {
      if (flags.preset) return printPresets(flags.preset, flags.json);
      const { checkpoint, config, tokenizer } = await openCheckpoint(
        await resolveModelPath(flags.model, flags.offline ? { offline: true } : {}),
      );
      try {
        const isGguf = checkpoint instanceof GgufCheckpoint;
        // A multimodal checkpoint is described by its language model's tensors.
        const tensors = config.family === "recurrent_gemma" ? checkpoint : textModelTensors(checkpoint);
        checkLayerCount(tensors, config.nLayers);
        const expected = expectedTensorsFor(config);
        const weightBytes = validateTensors(tensors, expected, config.family, { skipped: skippedTensorsFor(config) });
        const dtypes = new Map<string, number>();
        for (const name of expected.keys()) {
          const dtype = tensors.tensor(name)!.entry.dtype;
          dtypes.set(dtype, (dtypes.get(dtype) ?? 0) + 1);
        }
        const stateBytes = fullStateBytes(config);
        const report = {
          folder: checkpoint.dir,
          family: config.family,
          parameters: parameterCountFor(config),
          activeParameters: activeParameterCountFor(config),
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
          `model        ${FAMILY_NAMES[config.family]} (${parametersText(config)}) in ${report.folder}`,
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
