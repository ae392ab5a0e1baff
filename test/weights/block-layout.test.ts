/** The block layouts are defined twice (TypeScript and AssemblyScript): the compiled kernels must agree with the TypeScript ones. */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { ACTIVATION_Q8, ACTIVATION_SPLIT, PROMPT_TILE, Q4_0, Q8_0, QK } from "../../src/weights/block-layout.js";
import { GGML_TYPE_ID, ggmlType } from "../../src/weights/ggml-types.js";

const WASM = new URL("../../wasm/kernels.wasm", import.meta.url);

describe("quantized block layouts", () => {
  it("the compiled WebAssembly kernels use the TypeScript layouts", async () => {
    const module = await WebAssembly.compile(readFileSync(WASM));
    const instance = await WebAssembly.instantiate(module, { env: { memory: new WebAssembly.Memory({ initial: 1 }), abort: () => {} } });
    const global = (name: string) => (instance.exports[name] as WebAssembly.Global).value as number;
    assert.equal(global("QK"), QK);
    assert.equal(global("Q8_0_BLOCK_BYTES"), Q8_0.blockBytes);
    assert.equal(global("Q8_0_QUANTS_OFFSET"), Q8_0.quantsOffset);
    assert.equal(global("Q4_0_BLOCK_BYTES"), Q4_0.blockBytes);
    assert.equal(global("Q4_0_QUANTS_OFFSET"), Q4_0.quantsOffset);
    assert.equal(global("ACTIVATION_BLOCK_BYTES"), ACTIVATION_Q8.blockBytes);
    assert.equal(global("ACTIVATION_QUANTS_OFFSET"), ACTIVATION_Q8.quantsOffset);
    assert.equal(global("ACTIVATION_BIAS_OFFSET"), ACTIVATION_Q8.biasOffset);
    assert.equal(global("SPLIT_BLOCK_BYTES"), ACTIVATION_SPLIT.blockBytes);
    assert.equal(global("SPLIT_POS_OFFSET"), ACTIVATION_SPLIT.posOffset);
    assert.equal(global("SPLIT_NEG_OFFSET"), ACTIVATION_SPLIT.negOffset);
    assert.equal(global("PROMPT_TILE_BLOCK_BYTES"), PROMPT_TILE.blockBytes);
    assert.equal(global("PROMPT_TILE_MIN_TOKENS"), PROMPT_TILE.minTokens);
    // A repacked block column: f32 scales of four rows, then their 4 × QK quants as bytes.
    assert.equal(PROMPT_TILE.blockBytes, 4 * 4 + 4 * QK);
  });

  it("are ggml's: a 2-byte f16 scale before QK int8 (Q8_0) or QK/2 nibble bytes (Q4_0); activations: f32 scale, i32 bias, QK int8 (or QK positive and QK negative parts)", () => {
    assert.equal(Q8_0.blockBytes, 2 + QK);
    assert.equal(Q4_0.blockBytes, 2 + QK / 2);
    assert.equal(ACTIVATION_Q8.blockBytes, 8 + QK);
    assert.equal(ACTIVATION_SPLIT.blockBytes, 8 + 2 * QK);
    assert.equal(ACTIVATION_SPLIT.negOffset, ACTIVATION_SPLIT.posOffset + QK);
    assert.deepEqual(ggmlType(GGML_TYPE_ID.Q8_0), { name: "Q8_0", blockValues: QK, blockBytes: Q8_0.blockBytes });
    assert.deepEqual(ggmlType(GGML_TYPE_ID.Q4_0), { name: "Q4_0", blockValues: QK, blockBytes: Q4_0.blockBytes });
  });
});
