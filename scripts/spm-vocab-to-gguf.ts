/**
 * Turns spm_train's `.vocab` file into a vocabulary-only GGUF that gemma-ts reads as a tokenizer
 * (`gemma-ts train --tokenizer vocab.gguf`), with Gemma's chat template.
 *
 *   node --import tsx scripts/spm-vocab-to-gguf.ts data/kjv-spm.vocab data/kjv-vocab.gguf
 */
import { readFileSync, writeFileSync } from "node:fs";
import { encodeGgufVocabulary } from "../src/model/gguf-export.js";
import { GEMMA_CHAT_TEMPLATE } from "../src/tokenizer/chat-template.js";
import { parseSpmVocab } from "../src/tokenizer/spm-vocab.js";

const [input, output] = process.argv.slice(2);
if (!input || !output) throw new Error("usage: spm-vocab-to-gguf.ts IN.vocab OUT.gguf");
const vocab = parseSpmVocab(readFileSync(input, "utf8"), undefined, input);
const id = (piece: string) => vocab.pieces.indexOf(piece);
writeFileSync(
  output,
  await encodeGgufVocabulary(
    { ...vocab, chatTemplate: GEMMA_CHAT_TEMPLATE },
    { bos: id("<bos>"), eos: id("<eos>"), pad: id("<pad>") },
    "KJV SentencePiece BPE",
  ),
);
console.error(`wrote ${vocab.pieces.length} pieces to ${output}`);
