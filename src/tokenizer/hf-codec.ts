/** A Hugging Face `tokenizer.json` (+ tokenizer_config.json) as a GemmaTokenizer, via @huggingface/tokenizers. */
import { Tokenizer } from "@huggingface/tokenizers";
import { TokenizerError } from "../errors.js";
import { GemmaTokenizer, type SubwordCodec } from "./tokenizer.js";

/** Token-string → id lookup and the (callable) subword model; the parts of Tokenizer used for raw text. */
interface RawModel {
  (words: string[]): string[];
  tokens_to_ids: Map<string, number>;
  unk_token_id?: number;
}

class HfCodec implements SubwordCodec {
  readonly vocabSize: number;

  constructor(private readonly tokenizer: Tokenizer) {
    this.vocabSize = tokenizer.get_vocab(true).size;
  }

  encodeWithControlTokens(text: string): number[] {
    return this.tokenizer.encode(text, { add_special_tokens: false }).ids;
  }

  /** The subword model alone on normalized text: added tokens (`<start_of_turn>`, ...) are never matched. */
  encodeText(text: string): number[] {
    if (text.length === 0) return [];
    const model = this.tokenizer.model as unknown as RawModel;
    const normalized = this.tokenizer.normalizer ? this.tokenizer.normalizer(text) : text;
    const unk = model.unk_token_id ?? 0;
    return model([normalized]).map((t) => model.tokens_to_ids.get(t) ?? unk);
  }

  decode(ids: readonly number[], skipSpecialTokens: boolean): string {
    return this.tokenizer.decode([...ids], { skip_special_tokens: skipSpecialTokens, clean_up_tokenization_spaces: false });
  }

  tokenToId(token: string): number | null {
    return this.tokenizer.token_to_id(token) ?? null;
  }

  idToToken(id: number): string | null {
    return this.tokenizer.id_to_token(id) ?? null;
  }
}

export function tokenizerFromJson(tokenizerJson: unknown, tokenizerConfig: unknown = {}, source = "tokenizer.json"): GemmaTokenizer {
  if (typeof tokenizerJson !== "object" || tokenizerJson === null || !("model" in tokenizerJson)) {
    throw new TokenizerError(`${source}: not a Hugging Face tokenizer.json (no "model" section)`);
  }
  const config = (typeof tokenizerConfig === "object" && tokenizerConfig !== null ? tokenizerConfig : {}) as Record<string, unknown>;
  let tokenizer: Tokenizer;
  try {
    tokenizer = new Tokenizer(tokenizerJson, config);
  } catch (e) {
    throw new TokenizerError(`${source}: cannot build the tokenizer (${(e as Error).message})`);
  }
  const text = (key: string) => (typeof config[key] === "string" ? (config[key] as string) : undefined);
  return new GemmaTokenizer(new HfCodec(tokenizer), {
    bosToken: text("bos_token"),
    eosToken: text("eos_token"),
    chatTemplate: text("chat_template") ?? null,
    source,
  });
}
