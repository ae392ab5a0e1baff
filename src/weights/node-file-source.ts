/** A ByteSource over a Node file handle (the Node adapter; browsers read Blobs). */
import { open, type FileHandle } from "node:fs/promises";
import type { ByteSource } from "./byte-source.js";

/** Largest single read: fs.read takes at most 2 GiB, and smaller reads let progress tick. */
const MAX_READ = 64 * 1024 * 1024;

export class NodeFileSource implements ByteSource {
  private constructor(
    readonly name: string,
    readonly size: number,
    private readonly handle: FileHandle,
  ) {}

  static async open(path: string): Promise<NodeFileSource> {
    const handle = await open(path, "r");
    const stat = await handle.stat();
    return new NodeFileSource(path, stat.size, handle);
  }

  async read(offset: number, length: number, into?: Uint8Array): Promise<Uint8Array> {
    const out = into ?? new Uint8Array(length);
    let done = 0;
    while (done < length) {
      const n = Math.min(MAX_READ, length - done);
      const { bytesRead } = await this.handle.read(out, done, n, offset + done);
      if (bytesRead === 0) throw new Error(`${this.name}: unexpected end of file at byte ${offset + done}`);
      done += bytesRead;
    }
    return out;
  }

  private closed: Promise<void> | null = null;

  /** Idempotent: whoever gave up on the source first closes it. */
  close(): Promise<void> {
    this.closed ??= this.handle.close();
    return this.closed;
  }
}
