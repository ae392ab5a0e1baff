/**
 * The Gemma tokenizer: Hugging Face `tokenizer.json` run by @huggingface/tokenizers, with BOS handled
 * exactly once (GEMMA2.md §5, pitfall 5) and a way to encode text that can never become control tokens.
 */
import { Tokenizer } from "@huggingface/tokenizers";
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

/** Token-string → id lookup and the (callable) subword model; the parts of Tokenizer used for raw text. */
interface RawModel {
  (words: string[]): string[];
  tokens_to_ids: Map<string, number>;
  unk_token_id?: number;
}

export class GemmaTokenizer {
  readonly bosTokenId: number;
  readonly eosTokenId: number;
  /** `<start_of_turn>` / `<end_of_turn>`, or null for a tokenizer without chat markers. */
  readonly startOfTurnId: number | null;
  readonly endOfTurnId: number | null;
  readonly vocabSize: number;
  /** The chat template from tokenizer_config.json, if any. */
  readonly chatTemplate: string | null;
  private readonly tokenizer: Tokenizer;

  constructor(tokenizerJson: unknown, tokenizerConfig: unknown = {}, source = "tokenizer.json") {
    if (typeof tokenizerJson !== "object" || tokenizerJson === null || !("model" in tokenizerJson)) {
      throw new TokenizerError(`${source}: not a Hugging Face tokenizer.json (no "model" section)`);
    }
    const config = (typeof tokenizerConfig === "object" && tokenizerConfig !== null ? tokenizerConfig : {}) as Record<string, unknown>;
    try {
      this.tokenizer = new Tokenizer(tokenizerJson, config);
    } catch (e) {
      throw new TokenizerError(`${source}: cannot build the tokenizer (${(e as Error).message})`);
    }
    const id = (token: string) => this.tokenizer.token_to_id(token) ?? null;
    const bos = id(typeof config["bos_token"] === "string" ? config["bos_token"] : "<bos>");
    const eos = id(typeof config["eos_token"] === "string" ? config["eos_token"] : "<eos>");
    if (bos === null || eos === null) throw new TokenizerError(`${source}: vocabulary has no <bos> or <eos> token; not a Gemma tokenizer`);
    this.bosTokenId = bos;
    this.eosTokenId = eos;
    this.startOfTurnId = id("<start_of_turn>");
    this.endOfTurnId = id("<end_of_turn>");
    this.vocabSize = this.tokenizer.get_vocab(true).size;
    this.chatTemplate = typeof config["chat_template"] === "string" ? config["chat_template"] : null;
  }

  encode(text: string, options: EncodeOptions = {}): number[] {
    const ids = options.parseControlTokens === false ? this.encodeAsText(text) : this.tokenizer.encode(text, { add_special_tokens: false }).ids;
    if ((options.addBos ?? true) && ids[0] !== this.bosTokenId) ids.unshift(this.bosTokenId);
    return ids;
  }

  /** Subword ids of `text` with no control-token matching: `<start_of_turn>` typed by a user stays text. */
  private encodeAsText(text: string): number[] {
    if (text.length === 0) return [];
    const model = this.tokenizer.model as unknown as RawModel;
    const normalized = this.tokenizer.normalizer ? this.tokenizer.normalizer(text) : text;
    const unk = model.unk_token_id ?? 0;
    return model([normalized]).map((t) => model.tokens_to_ids.get(t) ?? unk);
  }

  decode(ids: readonly number[], options: DecodeOptions = {}): string {
    if (ids.length === 0) return "";
    return this.tokenizer.decode([...ids], { skip_special_tokens: options.skipSpecialTokens ?? false, clean_up_tokenization_spaces: false });
  }

  tokenToId(token: string): number | null {
    return this.tokenizer.token_to_id(token) ?? null;
  }

  idToToken(id: number): string | null {
    return this.tokenizer.id_to_token(id) ?? null;
  }
}
