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
  checkTokenIds(tokenizerJson as Record<string, unknown>, source);
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

/**
 * Token ids must be integers below the number of tokens the file defines: the tokenizer library
 * sizes arrays by the largest id, so one id of 2^31 took a minute to load.
 */
function checkTokenIds(json: Record<string, unknown>, source: string): void {
  const model = json["model"] as Record<string, unknown> | null;
  const vocab = model && typeof model === "object" ? model["vocab"] : undefined;
  const added = Array.isArray(json["added_tokens"]) ? (json["added_tokens"] as { id?: unknown }[]) : [];
  // BPE vocabularies map pieces to ids; Unigram ones list pieces, whose ids are their positions.
  const vocabIds: unknown[] = vocab && typeof vocab === "object" && !Array.isArray(vocab) ? Object.values(vocab) : [];
  const limit = (Array.isArray(vocab) ? vocab.length : vocabIds.length) + added.length;
  const ids = vocabIds.concat(added.map((t) => t?.id));
  for (const id of ids) {
    if (!Number.isInteger(id) || (id as number) < 0 || (id as number) >= limit) {
      throw new TokenizerError(
        `${source}: token id ${JSON.stringify(id)} is not an integer from 0 to ${limit - 1} (the file defines ${limit} token entries); ` +
          `corrupt tokenizer`,
      );
    }
  }
}
