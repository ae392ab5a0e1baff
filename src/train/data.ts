/**
 * Training data from a text file: tokenized once, split into a training and a validation part
 * (the last fraction of the tokens), and cut into windows of seqLen + 1 tokens, each starting with
 * <bos>: a window's first seqLen tokens are the input, its last seqLen the next-token targets.
 */
import { readFile, stat } from "node:fs/promises";
import { createHash } from "node:crypto";
import { GemmaError } from "../errors.js";
import type { GemmaTokenizer } from "../tokenizer/tokenizer.js";

export interface TextDataset {
  train: Int32Array[];
  validation: Int32Array[];
  /** sha256 of the file's bytes: teacher targets record it to refuse mismatched data. */
  sha256: string;
  /** sha256 of the training windows' token ids: catches a different tokenizer on the same text. */
  tokensSha256: string;
  tokens: number;
}

export class DataError extends GemmaError {
  override name = "DataError";
}

export async function loadTextDataset(
  path: string,
  tokenizer: GemmaTokenizer,
  seqLen: number,
  validationFraction = 0.1,
): Promise<TextDataset> {
  const info = await stat(path).catch(() => null);
  if (!info?.isFile()) throw new DataError(`${path}: no such data file`);
  const bytes = await readFile(path);
  const text = bytes.toString("utf8");
  if (text.trim().length === 0) throw new DataError(`${path}: the data file is empty`);
  const ids = tokenizer.encode(text, { addBos: false, parseControlTokens: false });
  const split = Math.floor(ids.length * (1 - validationFraction));
  const train = windows(ids.slice(0, split), seqLen, tokenizer.bosTokenId);
  const validation = windows(ids.slice(split), seqLen, tokenizer.bosTokenId);
  if (train.length === 0) {
    throw new DataError(
      `${path}: ${ids.length} tokens are too few for one training sequence of ${seqLen} tokens (after holding out ` +
        `${Math.round(validationFraction * 100)}% for validation); use a smaller --seq-len or more text`,
    );
  }
  const tokensHash = createHash("sha256");
  for (const w of train) tokensHash.update(new Uint8Array(w.buffer, w.byteOffset, w.byteLength));
  return {
    train,
    validation,
    sha256: createHash("sha256").update(bytes).digest("hex"),
    tokensSha256: tokensHash.digest("hex"),
    tokens: ids.length,
  };
}

/** Non-overlapping windows of seqLen tokens, each prefixed with <bos> (seqLen + 1 ids). */
function windows(ids: number[], seqLen: number, bos: number): Int32Array[] {
  const out: Int32Array[] = [];
  for (let at = 0; at + seqLen <= ids.length; at += seqLen) {
    const w = new Int32Array(seqLen + 1);
    w[0] = bos;
    w.set(ids.slice(at, at + seqLen), 1);
    out.push(w);
  }
  return out;
}
