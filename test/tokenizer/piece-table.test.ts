import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { PieceTable } from "../../src/tokenizer/piece-table.js";
import { StringTable } from "../../src/weights/string-table.js";

describe("PieceTable", () => {
  const pieces = ["<pad>", "▁the", "the", "", "日本", "😀", "▁the", "a", "ab", "abc", "\uFEFF#", "#"];
  for (let i = 0; i < 3000; i++) pieces.push(`▁w${(i * 7919) % 5000}`);
  const table = new PieceTable(StringTable.from(pieces));
  const firstIds = new Map<string, number>();
  pieces.forEach((p, id) => {
    if (!firstIds.has(p)) firstIds.set(p, id);
  });

  it("finds every piece at its first id, as a Map built in order does", () => {
    for (const [piece, id] of firstIds) assert.equal(table.find(piece), id, JSON.stringify(piece));
    assert.equal(table.find("▁the"), 1);
  });

  it("finds a span of a longer text without slicing it, and -1 for what is not a piece", () => {
    const text = "xx▁theyy😀";
    assert.equal(table.find(text, 2, 6), 1);
    assert.equal(table.find(text, 3, 6), 2);
    assert.equal(table.find(text, 8, 10), 5);
    assert.equal(table.find(text, 2, 7), -1);
    assert.equal(table.find("▁w5000"), -1);
    assert.equal(table.find("#"), 11);
    assert.equal(table.find("\uFEFF#"), 10);
  });

  it("gives each id's piece back, and undefined outside the vocabulary", () => {
    for (const [id, p] of pieces.entries()) assert.equal(table.piece(id), p);
    assert.equal(table.size, pieces.length);
    for (const id of [-1, pieces.length, 1.5]) assert.equal(table.piece(id), undefined);
  });
});
