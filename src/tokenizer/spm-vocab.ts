/**
 * A SentencePiece vocabulary from `spm_train`'s `.vocab` file (one `piece<TAB>score` line per id)
 * with piece types as SentencePiece assigns them: the control pieces named, the unknown piece,
 * user-defined symbols, `<0xNN>` byte pieces, the rest normal.
 */
import { TokenizerError } from "../errors.js";
import { PieceType } from "./sentencepiece.js";

export interface SpmVocabOptions {
  control: readonly string[];
  unknown: string;
  userDefined: readonly string[];
}

export const GEMMA_SPM_PIECES: SpmVocabOptions = {
  control: ["<pad>", "<eos>", "<bos>"],
  unknown: "<unk>",
  userDefined: ["<start_of_turn>", "<end_of_turn>"],
};

export function parseSpmVocab(
  text: string,
  options: SpmVocabOptions = GEMMA_SPM_PIECES,
  source = "spm.vocab",
): { pieces: string[]; scores: number[]; types: number[] } {
  const pieces: string[] = [];
  const scores: number[] = [];
  const types: number[] = [];
  for (const [i, line] of text.split("\n").entries()) {
    if (line === "") continue;
    const tab = line.lastIndexOf("\t");
    const score = Number(line.slice(tab + 1));
    if (tab < 0 || !Number.isFinite(score)) throw new TokenizerError(`${source}:${i + 1}: expected "piece<TAB>score"`);
    const piece = line.slice(0, tab);
    pieces.push(piece);
    scores.push(score);
    types.push(
      options.control.includes(piece)
        ? PieceType.control
        : piece === options.unknown
          ? PieceType.unknown
          : options.userDefined.includes(piece)
            ? PieceType.userDefined
            : /^<0x[0-9A-F]{2}>$/.test(piece)
              ? PieceType.byte
              : PieceType.normal,
    );
  }
  if (pieces.length === 0) throw new TokenizerError(`${source}: no pieces`);
  return { pieces, scores, types };
}
