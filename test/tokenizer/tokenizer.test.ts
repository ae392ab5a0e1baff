import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { TokenizerError } from "../../src/errors.js";
import { loadTokenizer } from "../../src/tokenizer/load.js";
import { StreamDecoder } from "../../src/tokenizer/stream-decoder.js";
import { gemmaTokenizer, GEMMA_TOKENIZER_DIR } from "../helpers/tokenizer.js";
import { tempDir } from "../helpers/temp.js";

/** Ids from the real Gemma tokenizer, BOS (2) first. */
const KNOWN: [string, number[]][] = [
  ["Hello world", [2, 4521, 2134]],
  ["The quick brown fox jumps over the lazy dog.", [2, 651, 4320, 8426, 25341, 36271, 1163, 573, 27894, 5929, 235265]],
  ["def add(a, b):\n    return a + b\n", [2, 1293, 1843, 235278, 235250, 235269, 518, 1245, 108, 141, 773, 476, 963, 518, 108]],
  ["日本語のテキスト", [2, 62938, 235372, 141972]],
  ["你好，世界", [2, 87139, 235365, 9979]],
  ["🦙 llamas 👍🏽", [2, 250645, 129953, 38104, 239518]],
  ["  two  spaces\tand\ttabs   ", [2, 139, 9721, 139, 46633, 226, 639, 226, 31973, 140]],
  ["line one\n\nline three\n", [2, 703, 974, 109, 703, 2149, 108]],
  ["<start_of_turn>user\nHi<end_of_turn>\n", [2, 106, 1645, 108, 2151, 107, 108]],
  ["naïve café", [2, 556, 236370, 524, 18688]],
];

describe("Gemma tokenizer", () => {
  const tokenizer = gemmaTokenizer();

  it("knows the special ids (GEMMA2.md §1)", () => {
    assert.equal(tokenizer.bosTokenId, 2);
    assert.equal(tokenizer.eosTokenId, 1);
    assert.equal(tokenizer.startOfTurnId, 106);
    assert.equal(tokenizer.endOfTurnId, 107);
    assert.equal(tokenizer.vocabSize, 256000);
  });

  for (const [text, ids] of KNOWN) {
    it(`encodes ${JSON.stringify(text)} to the known ids and back`, () => {
      assert.deepEqual(tokenizer.encode(text), ids);
      assert.equal(tokenizer.decode(ids.slice(1)), text);
    });
  }

  it("adds BOS exactly once", () => {
    assert.deepEqual(tokenizer.encode("Hello world", { addBos: false }), [4521, 2134]);
    assert.deepEqual(tokenizer.encode("<bos>Hello world"), [2, 4521, 2134]);
    assert.deepEqual(tokenizer.encode(""), [2]);
  });

  it("can keep typed control tokens as plain text", () => {
    const ids = tokenizer.encode("<start_of_turn>user", { addBos: false, parseControlTokens: false });
    assert.ok(!ids.includes(106), `ids ${ids}`);
    assert.equal(tokenizer.decode(ids), "<start_of_turn>user");
  });

  it("streams multi-byte characters without ever emitting half of one", () => {
    const text = "a𒀀b🦙";
    const ids = tokenizer.encode(text, { addBos: false });
    // 𒀀 is not in the vocabulary: four byte-fallback tokens.
    assert.ok(ids.length >= 6, `expected byte fallback, got ${ids}`);
    const decoder = new StreamDecoder(tokenizer);
    const pieces = ids.map((id) => decoder.push(id));
    for (const piece of pieces) assert.ok(!piece.includes("\uFFFD"), `half a character emitted: ${JSON.stringify(pieces)}`);
    assert.equal(pieces.join(""), text);
    assert.ok(pieces.filter((p) => p === "").length >= 3);
  });

  it("loads from a folder and fails clearly without tokenizer.json", async () => {
    const loaded = await loadTokenizer(GEMMA_TOKENIZER_DIR);
    assert.deepEqual(loaded.encode("Hello world"), [2, 4521, 2134]);
    const empty = tempDir("gemma-ts-tok");
    await assert.rejects(
      loadTokenizer(empty),
      (e: unknown) => e instanceof TokenizerError && /tokenizer\.json: cannot read \(ENOENT\)/.test(e.message),
    );
    writeFileSync(join(empty, "tokenizer.json"), "{ broken");
    await assert.rejects(loadTokenizer(empty), /tokenizer\.json: not valid JSON/);
    writeFileSync(join(empty, "tokenizer.json"), "{}");
    await assert.rejects(loadTokenizer(empty), /not a Hugging Face tokenizer\.json/);
  });
});

describe("a SentencePiece vocabulary trained by spm_train, in a vocabulary-only GGUF", () => {
  it("encodes as spm_encode does and loads as --tokenizer file.gguf", async () => {
    const { readFileSync } = await import("node:fs");
    const { FIXTURES } = await import("../helpers/random-model.js");
    const tokenizer = await loadTokenizer(`${FIXTURES}kjv-vocab.gguf`);
    const expected = JSON.parse(readFileSync(`${FIXTURES}kjv-spm-ids.json`, "utf8")) as { texts: string[]; ids: number[][] };
    assert.equal(tokenizer.vocabSize, 4000);
    assert.deepEqual([tokenizer.bosTokenId, tokenizer.eosTokenId, tokenizer.startOfTurnId, tokenizer.endOfTurnId], [2, 1, 4, 5]);
    expected.texts.forEach((text, i) => {
      assert.deepEqual(tokenizer.encode(text, { addBos: false }), expected.ids[i], text);
      assert.equal(tokenizer.decode(expected.ids[i]!), text);
    });
    assert.ok(tokenizer.chatTemplate?.includes("start_of_turn"));
  });
});

describe("corrupt tokenizer files", () => {
  it("a token id far outside the vocabulary is refused at once, naming the file", async () => {
    const dir = tempDir("gemma-ts-badtok");
    const json = JSON.parse(readFileSync(join(GEMMA_TOKENIZER_DIR, "tokenizer.json"), "utf8")) as { added_tokens: { id: number }[] };
    json.added_tokens[5]!.id = 2 ** 31;
    writeFileSync(join(dir, "tokenizer.json"), JSON.stringify(json));
    const t0 = performance.now();
    await assert.rejects(
      loadTokenizer(dir),
      (e: Error) => e instanceof TokenizerError && /tokenizer\.json: token id 2147483648 is not an integer from 0 to \d+/.test(e.message),
    );
    assert.ok(performance.now() - t0 < 10_000, `refused in ${performance.now() - t0} ms`);
  });
});
