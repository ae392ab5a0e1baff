import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { f16ToF32 } from "../../src/weights/dtype.js";
import { dequantizeQ8_0Row, Q8_0_BLOCK_BYTES } from "../../src/weights/q8_0.js";
import { toBlocks } from "../../src/weights/matrix-rows.js";

describe("Q8_0 blocks (llama.cpp layout)", () => {
  it("stores an f16 scale and 32 int8 per block, and round-trips within half a step", () => {
    const values = Float32Array.from({ length: 64 }, (_, i) => Math.sin(i) * 0.3);
    values[5] = -0.5; // the block's largest magnitude maps to -127
    const q = toBlocks(values, "f32", 1, 64, "q8_0");
    assert.equal(q.length, 2 * Q8_0_BLOCK_BYTES);
    const d = f16ToF32(q[0]! | (q[1]! << 8));
    assert.ok(Math.abs(d - 0.5 / 127) < 1e-6);
    assert.equal((q[2 + 5]! << 24) >> 24, -127);
    const back = new Float32Array(64);
    dequantizeQ8_0Row(q, 0, 64, back);
    for (let i = 0; i < 64; i++) assert.ok(Math.abs(back[i]! - values[i]!) <= d / 2 + 1e-6, `value ${i}`);
  });

  it("quantizes an all-zero block to zeros", () => {
    const q = toBlocks(new Float32Array(32), "f32", 1, 32, "q8_0");
    assert.deepEqual([...q], new Array(34).fill(0));
  });
});
