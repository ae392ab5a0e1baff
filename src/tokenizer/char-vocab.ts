/**
 * A character-level vocabulary in the Gemma tokenizer's layout (Gemma's special tokens at their
 * ids, 256 byte-fallback pieces, "▁" for spaces, one piece per character of a text plus printable
 * ASCII), as a Hugging Face tokenizer.json. For small models trained here, whose embedding table
 * would be dominated by the full 256k Gemma vocabulary.
 */
export const CHAR_VOCAB_SPECIALS = ["<pad>", "<eos>", "<bos>", "<unk>", "<start_of_turn>", "<end_of_turn>"] as const;

export function charTokenizerFiles(text: string): {
  tokenizerJson: Record<string, unknown>;
  tokenizerConfig: Record<string, unknown>;
  vocabSize: number;
} {
  const pieces: string[] = [
    ...CHAR_VOCAB_SPECIALS,
    ...Array.from({ length: 256 }, (_, i) => `<0x${i.toString(16).toUpperCase().padStart(2, "0")}>`),
  ];
  const printable = Array.from({ length: 95 }, (_, i) => String.fromCharCode(32 + i));
  const chars = new Set<string>(["\n", "▁", ...printable, ...text].filter((c) => c !== " "));
  pieces.push(...[...chars].sort());
  const tokenizerJson = {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: CHAR_VOCAB_SPECIALS.map((content, id) => ({
      id,
      content,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    })),
    normalizer: { type: "Replace", pattern: { String: " " }, content: "▁" },
    pre_tokenizer: null,
    post_processor: null,
    decoder: {
      type: "Sequence",
      decoders: [{ type: "Replace", pattern: { String: "▁" }, content: " " }, { type: "ByteFallback" }, { type: "Fuse" }],
    },
    model: {
      type: "BPE",
      dropout: null,
      unk_token: "<unk>",
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: true,
      byte_fallback: true,
      ignore_merges: false,
      vocab: Object.fromEntries(pieces.map((p, i) => [p, i])),
      merges: [],
    },
  };
  const tokenizerConfig = { bos_token: "<bos>", eos_token: "<eos>", pad_token: "<pad>", unk_token: "<unk>" };
  return { tokenizerJson, tokenizerConfig, vocabSize: pieces.length };
}
