import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { dequantizeKQuant, K_QUANT_DTYPE, QK_K, type KQuantName } from "../../src/weights/k-quants.js";
import { FIXTURES } from "../helpers/random-model.js";

/** Random blocks dequantized by gguf-py (scripts/make-kquant-fixture.py). */
const reference = JSON.parse(readFileSync(join(FIXTURES, "kquants.json"), "utf8")) as Record<
  KQuantName,
  { blockBytes: number; bytes: string; values: string }
>;

for (const type of ["Q4_K", "Q5_K", "Q6_K"] as const) {
  test(`${type} dequantization equals gguf-py's`, () => {
    const bytes = new Uint8Array(Buffer.from(reference[type].bytes, "base64"));
    const valueBytes = Buffer.from(reference[type].values, "base64");
    const expected = new Float32Array(valueBytes.buffer, valueBytes.byteOffset, valueBytes.byteLength / 4);
    const blocks = bytes.length / reference[type].blockBytes;
    const out = new Float32Array(blocks * QK_K);
    dequantizeKQuant(K_QUANT_DTYPE[type], bytes, 0, out);
    let worst = 0;
    for (let i = 0; i < out.length; i++) worst = Math.max(worst, Math.abs(out[i]! - expected[i]!) / Math.max(1e-6, Math.abs(expected[i]!)));
    assert.ok(worst < 1e-5, `${type}: worst relative difference ${worst}`);
    assert.ok(
      expected.some((v) => v !== 0),
      "fixture holds non-zero values",
    );
  });
}
