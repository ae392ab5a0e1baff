/**
 * Hands an array's memory back now instead of at the next garbage collection, where the engine can
 * (`ArrayBuffer.prototype.transfer`: Node ≥ 21, current browsers). A dead 1 MiB logits row per
 * decoded token, or a GGUF header's 8 MiB read, otherwise stays resident until V8 collects it, and
 * that is what lifts peak RSS over the weights + KV cache budget.
 *
 * Only for arrays that own their whole buffer and that nothing else holds: the buffer is detached,
 * so every view of it reads as empty afterwards. Anything else (a subarray of a shared buffer, a
 * SharedArrayBuffer, an engine without `transfer`) is left to the GC.
 */
interface Transferable {
  transfer?: (newLength?: number) => ArrayBuffer;
}

export function freeBuffer(array: ArrayBufferView): void {
  const buffer = array.buffer;
  if (!(buffer instanceof ArrayBuffer) || array.byteOffset !== 0 || array.byteLength !== buffer.byteLength) return;
  const transfer = (buffer as Transferable).transfer;
  if (typeof transfer === "function") transfer.call(buffer, 0);
}
