/**
 * The small demo model shipped in the npm package (docs/demo-model.md): a Gemma 2-architecture
 * model distilled here on the King James Bible, with its own SentencePiece vocabulary, in one
 * GGUF file. The CLI's default `--model`, so a fresh install has something to talk to.
 */
import { fileURLToPath } from "node:url";

export const BUNDLED_MODEL = fileURLToPath(new URL("../models/gemma-ts-kjv.gguf", import.meta.url));
