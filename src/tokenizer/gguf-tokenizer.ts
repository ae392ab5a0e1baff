/** The tokenizer stored in a GGUF file's metadata (tokenizer.ggml.*), as a GemmaTokenizer. */
import { TokenizerError } from "../errors.js";
import type { GgufMetadataReader } from "../weights/gguf.js";
import { SentencePieceCodec } from "./sentencepiece.js";
import { GemmaTokenizer } from "./tokenizer.js";

/** Null when the file carries no vocabulary (token ids must then be given directly). */
export function tokenizerFromGguf(meta: GgufMetadataReader, source: string): GemmaTokenizer | null {
  const model = meta.optionalString("tokenizer.ggml.model");
  if (model === undefined || model === "no_vocab") return null;
  if (model !== "llama") {
    throw new TokenizerError(`${source}: tokenizer.ggml.model is ${JSON.stringify(model)}; Gemma files use "llama" (SentencePiece)`);
  }
  const pieces = meta.strings("tokenizer.ggml.tokens");
  const codec = new SentencePieceCodec({
    pieces,
    scores: meta.has("tokenizer.ggml.scores") ? meta.array("tokenizer.ggml.scores", "number") : new Array<number>(pieces.length).fill(0),
    types: meta.has("tokenizer.ggml.token_type")
      ? meta.array("tokenizer.ggml.token_type", "number")
      : new Array<number>(pieces.length).fill(1),
    // llama.cpp's default when the key is absent; Gemma's converter writes false.
    addSpacePrefix: meta.optionalBoolean("tokenizer.ggml.add_space_prefix") ?? true,
    source,
  });
  const pieceOf = (key: string): string | undefined => {
    const id = meta.optionalNumber(key);
    if (id === undefined) return undefined;
    const piece = pieces.at(id);
    if (piece === undefined) throw new TokenizerError(`${source}: ${key} ${id} is outside the vocabulary of ${pieces.length}`);
    return piece;
  };
  return new GemmaTokenizer(codec, {
    bosToken: pieceOf("tokenizer.ggml.bos_token_id"),
    eosToken: pieceOf("tokenizer.ggml.eos_token_id"),
    chatTemplate: meta.optionalString("tokenizer.chat_template") ?? null,
    source,
  });
}
