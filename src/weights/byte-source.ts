/**
 * Random-access bytes of one file. Library code reads checkpoints only through this interface,
 * so a browser `Blob` (src/browser/blob-source.ts) or a Node file (node-file-source.ts) can serve.
 */
export interface ByteSource {
  /** Name used in error messages (a path or URL). */
  readonly name: string;
  readonly size: number;
  /** Reads exactly `length` bytes at `offset` into `into` (or a new array). */
  read(offset: number, length: number, into?: Uint8Array): Promise<Uint8Array>;
  close(): Promise<void>;
}
