import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { f16ToF32 } from "../../src/weights/dtype.js";
import { dequantizeQ4_0Row, Q4_0_BLOCK_BYTES } from "../../src/weights/q4_0.js";
import { toBlocks } from "../../src/weights/matrix-rows.js";

describe("Q4_0 blocks (llama.cpp layout)", () => {
  it("stores an f16 scale and 16 bytes of nibbles per block, values 0-15 low and 16-31 high", () => {
    const values = Float32Array.from({ length: 64 }, (_, i) => Math.cos(i) * 0.2);
    values[3] = 0.4; // the block's largest magnitude: d = 0.4 / -8, so it maps to nibble 0 (value -8)
    const q = toBlocks(values, "f32", 1, 64, "q4_0");
    assert.equal(q.length, 2 * Q4_0_BLOCK_BYTES);
    const d = f16ToF32(q[0]! | (q[1]! << 8));
    assert.ok(Math.abs(d - 0.4 / -8) < 1e-4);
    assert.equal(q[2 + 3]! & 0x0f, 0);
    const back = new Float32Array(64);
    dequantizeQ4_0Row(q, 0, 64, back);
    // Within one step (the positive end clamps at 7 · d).
    for (let i = 0; i < 64; i++)
      assert.ok(
        Math.abs(back[i]! - values[i]!) <= Math.abs(f16ToF32(q[i < 32 ? 0 : 18]! | (q[i < 32 ? 1 : 19]! << 8))) + 1e-6,
        `value ${i}`,
      );
    assert.ok(Math.abs(back[3]! - 0.4) < 1e-3);
  });
});
