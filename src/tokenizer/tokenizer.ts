/**
 * The Gemma tokenizer: BOS handled exactly once (GEMMA2.md §5, pitfall 5) and a way to encode text
 * that can never become control tokens, over a subword codec: Hugging Face `tokenizer.json` run by
 * @huggingface/tokenizers (hf-codec.ts), or a GGUF file's SentencePiece vocabulary (sentencepiece.ts).
 */
import { TokenizerError } from "../errors.js";
export interface EncodeOptions {
  /** Prepend <bos> unless the text already starts with it (default true). */
  addBos?: boolean;
  /**
   * Whether control-token strings typed in the text (`<start_of_turn>`, `<eos>`, ...) become control
   * tokens (default true, as in Hugging Face). Chat messages always use false.
   */
  parseControlTokens?: boolean;
}

export interface DecodeOptions {
  /** Drop control tokens (<bos>, <eos>, <start_of_turn>, ...) from the text. */
  skipSpecialTokens?: boolean;
}

/** A subword vocabulary: what GemmaTokenizer needs from tokenizer.json or GGUF metadata. */
export interface SubwordCodec {
  readonly vocabSize: number;
  /** Ids of `text`, with control-token strings typed in it matched as control tokens. */
  encodeWithControlTokens(text: string): number[];
  /** Ids of `text` as plain text: no string in it ever becomes a control token. */
  encodeText(text: string): number[];
  decode(ids: readonly number[], skipSpecialTokens: boolean): string;
  tokenToId(token: string): number | null;
  idToToken(id: number): string | null;
}

export interface TokenizerSettings {
  /** Token strings of BOS / EOS (default <bos> / <eos>). */
  bosToken?: string;
  eosToken?: string;
  chatTemplate?: string | null;
  /** Names the vocabulary's file in errors. */
  source: string;
}

export class GemmaTokenizer {
  readonly bosTokenId: number;
  readonly eosTokenId: number;
  /** `<start_of_turn>` / `<end_of_turn>`, or null for a tokenizer without chat markers. */
  readonly startOfTurnId: number | null;
  readonly endOfTurnId: number | null;
  readonly vocabSize: number;
  /** The chat template (tokenizer_config.json or GGUF metadata), if any. */
  readonly chatTemplate: string | null;

  constructor(
    private readonly codec: SubwordCodec,
    settings: TokenizerSettings,
  ) {
    const bos = codec.tokenToId(settings.bosToken ?? "<bos>");
    const eos = codec.tokenToId(settings.eosToken ?? "<eos>");
    if (bos === null || eos === null)
      throw new TokenizerError(`${settings.source}: vocabulary has no <bos> or <eos> token; not a Gemma tokenizer`);
    this.bosTokenId = bos;
    this.eosTokenId = eos;
    this.startOfTurnId = codec.tokenToId("<start_of_turn>");
    this.endOfTurnId = codec.tokenToId("<end_of_turn>");
    this.vocabSize = codec.vocabSize;
    this.chatTemplate = settings.chatTemplate ?? null;
  }

  encode(text: string, options: EncodeOptions = {}): number[] {
    const ids = options.parseControlTokens === false ? this.codec.encodeText(text) : this.codec.encodeWithControlTokens(text);
    if ((options.addBos ?? true) && ids[0] !== this.bosTokenId) ids.unshift(this.bosTokenId);
    return ids;
  }

  decode(ids: readonly number[], options: DecodeOptions = {}): string {
    if (ids.length === 0) return "";
    return this.codec.decode(ids, options.skipSpecialTokens ?? false);
  }

  tokenToId(token: string): number | null {
    return this.codec.tokenToId(token);
  }

  idToToken(id: number): string | null {
    return this.codec.idToToken(id);
  }

  private longestPiece: number | null = null;

  /**
   * Characters in the vocabulary's longest piece: no token covers more text, so a text of n
   * characters needs at least n / maxPieceChars tokens (byte pieces like `<0x0A>` only raise it).
   */
  get maxPieceChars(): number {
    if (this.longestPiece === null) {
      let longest = 1;
      for (let id = 0; id < this.vocabSize; id++) longest = Math.max(longest, this.codec.idToToken(id)?.length ?? 0);
      this.longestPiece = longest;
    }
    return this.longestPiece;
  }
}
