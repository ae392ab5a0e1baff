import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { freeBuffer } from "../../src/weights/free-buffer.js";

const canTransfer = typeof (ArrayBuffer.prototype as { transfer?: unknown }).transfer === "function";

describe("freeBuffer", () => {
  it("hands back the memory of an array that owns its whole buffer", {
    skip: !canTransfer && "this engine has no ArrayBuffer.prototype.transfer",
  }, () => {
    const logits = new Float32Array(262144).fill(1);
    const buffer = logits.buffer;
    freeBuffer(logits);
    assert.equal(buffer.byteLength, 0);
    assert.equal(logits.length, 0);
  });

  it("leaves views of part of a buffer, shared memory and other engines' arrays alone", () => {
    const whole = new Float32Array(8).fill(2);
    const part = whole.subarray(0, 4);
    freeBuffer(part);
    assert.deepEqual([...whole], Array(8).fill(2));
    const shared = new Float32Array(new SharedArrayBuffer(16)).fill(3);
    freeBuffer(shared);
    assert.deepEqual([...shared], [3, 3, 3, 3]);
  });
});
