/**
 * A ByteSource over a browser Blob (a picked File, or a file in the Origin Private File System):
 * range reads by `slice`, so a multi-gigabyte checkpoint is never read into one ArrayBuffer.
 */
import type { ByteSource } from "../weights/byte-source.js";

/** Largest slice read at once: bounds the transient copy while a big tensor is assembled. */
const MAX_SLICE = 64 * 1024 * 1024;

export class BlobSource implements ByteSource {
  readonly size: number;

  constructor(
    private readonly blob: Blob,
    readonly name: string,
  ) {
    this.size = blob.size;
  }

  async read(offset: number, length: number, into?: Uint8Array): Promise<Uint8Array> {
    if (offset < 0 || length < 0 || offset + length > this.size) {
      throw new Error(`${this.name}: cannot read ${length} bytes at byte ${offset}; the file has ${this.size}`);
    }
    if (!into && length <= MAX_SLICE) return new Uint8Array(await this.blob.slice(offset, offset + length).arrayBuffer());
    const out = into ?? new Uint8Array(length);
    for (let done = 0; done < length; ) {
      const n = Math.min(MAX_SLICE, length - done);
      out.set(new Uint8Array(await this.blob.slice(offset + done, offset + done + n).arrayBuffer()), done);
      done += n;
    }
    return out;
  }

  async close(): Promise<void> {
    // A Blob holds no handle.
  }
}
