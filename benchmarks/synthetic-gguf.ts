/**
 * A synthetic GGUF of a published Gemma shape (random weights, the real 256k / 262k vocabulary),
 * written once into the benchmarks' temp folder and reused: what bench:web and bench:grammar run.
 */
import { closeSync, existsSync, mkdirSync, openSync, renameSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BENCH_SHAPES, SHAPE_ALIASES } from "../src/measure/run.js";
import { SyntheticSource } from "../src/measure/synthetic.js";
import type { GemmaConfig } from "../src/model/gemma/config.js";
import { ggufModelParts, type GgufMatrixType } from "../src/model/gguf-export.js";
import { GEMMA3_TOKENIZER_DIR, GEMMA_TOKENIZER_DIR, gemmaGgufVocab } from "../test/helpers/tokenizer.js";

export const SYNTHETIC_DIR = join(tmpdir(), "gemma-ts-bench-web");

/** The Gemma 2, 3 or 4 shape a --shape names (aliases like 2b allowed). */
export function gemmaShape(name: string): { shape: string; config: GemmaConfig } {
  const shape = SHAPE_ALIASES[name] ?? name;
  const config = BENCH_SHAPES[shape] as GemmaConfig | undefined;
  if (!config || !["gemma2", "gemma3", "gemma4"].includes(config.family))
    throw new Error(`--shape must be a Gemma 2, 3 or 4 shape (${Object.keys(SHAPE_ALIASES).join(", ")}, gemma3-1b, gemma4-e2b, ...)`);
  return { shape, config };
}

/** The file's path, writing it first when it is not there yet. */
export async function syntheticGguf(shape: string, config: GemmaConfig, weights: string): Promise<string> {
  const matrixType = weights.toUpperCase() as GgufMatrixType;
  if (!["Q8_0", "Q4_0", "F16"].includes(matrixType)) throw new Error("--weights must be q8_0, q4_0 or f16");
  const file = `${shape}-${weights}.gguf`;
  mkdirSync(SYNTHETIC_DIR, { recursive: true });
  if (!existsSync(join(SYNTHETIC_DIR, file))) {
    process.stderr.write(`writing ${file} (synthetic weights, the Gemma vocabulary)…\n`);
    // Gemma 3 and 4 have the 262k vocabulary; Gemma 2 the 256k one.
    const vocabulary = gemmaGgufVocab(config.family === "gemma2" ? GEMMA_TOKENIZER_DIR : GEMMA3_TOKENIZER_DIR);
    const parts = await ggufModelParts(
      new SyntheticSource(config, 1),
      { ...config, vocabSize: vocabulary.pieces.length },
      { matrixType, vocabulary },
    );
    // In pieces: a 9B file is larger than one typed array, and one write call takes at most 2 GiB.
    const fd = openSync(join(SYNTHETIC_DIR, `${file}.part`), "w");
    for (const part of parts) for (let at = 0; at < part.length; at += 1 << 30) writeSync(fd, part.subarray(at, at + (1 << 30)));
    closeSync(fd);
    renameSync(join(SYNTHETIC_DIR, `${file}.part`), join(SYNTHETIC_DIR, file));
  }
  return join(SYNTHETIC_DIR, file);
}
