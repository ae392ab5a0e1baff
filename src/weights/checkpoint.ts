/**
 * A Hugging Face checkpoint: one `model.safetensors` or the shards listed in
 * `model.safetensors.index.json`, each opened (header validated) and mapped tensor → file. Works on
 * any ByteSource, so Node files (checkpoint-folder.ts) and browser Files share it.
 */
import { CheckpointError } from "../errors.js";
import type { ByteSource } from "./byte-source.js";
import { SafetensorsFile, type StoredTensor, type TensorEntry } from "./safetensors.js";

export interface TensorLocation {
  /** The file holding the tensor (its name for messages, and a reader). */
  file: {
    readTensor(name: string): Promise<StoredTensor>;
    /**
     * Reads `into.length` stored bytes of tensor `name` from `byteOffset` within it, unconverted,
     * straight into `into` (a backend's memory); present where stored bytes are usable as they are.
     */
    readRange?(name: string, byteOffset: number, into: Uint8Array): Promise<void>;
    source: { name: string };
  };
  entry: TensorEntry;
}

/** Named tensors to load a model from: a checkpoint folder, or synthetic weights for benchmarks. */
export interface TensorSource {
  /** Folder name for messages. */
  readonly dir: string;
  tensor(name: string): TensorLocation | undefined;
  tensorNames(): string[];
}

export class Checkpoint implements TensorSource {
  private constructor(
    /** The folder holding config.json and the tokenizer files. */
    readonly dir: string,
    readonly files: SafetensorsFile[],
    private readonly index: ReadonlyMap<string, TensorLocation>,
  ) {}

  /**
   * Opens every shard (each a function returning its source, so a failed open names the index)
   * and maps tensor names to them; on any error the sources opened so far are closed.
   */
  static async fromSources(dir: string, shards: readonly (() => Promise<ByteSource>)[]): Promise<Checkpoint> {
    const files: SafetensorsFile[] = [];
    const index = new Map<string, TensorLocation>();
    try {
      for (const openShard of shards) {
        const source = await openShard();
        const file = await SafetensorsFile.open(source).catch(async (e: unknown) => {
          await source.close();
          throw e;
        });
        files.push(file);
        for (const entry of file.tensors.values()) {
          const seen = index.get(entry.name);
          if (seen)
            throw new CheckpointError(
              `tensor ${entry.name} appears in both ${seen.file.source.name} and ${source.name}`,
              source.name,
              entry.name,
            );
          index.set(entry.name, { file, entry });
        }
      }
    } catch (e) {
      await Promise.all(files.map((f) => f.close()));
      throw e;
    }
    return new Checkpoint(dir, files, index);
  }

  tensor(name: string): TensorLocation | undefined {
    return this.index.get(name);
  }

  tensorNames(): string[] {
    return [...this.index.keys()];
  }

  async close(): Promise<void> {
    await Promise.all(this.files.map((f) => f.close()));
  }
}

/** The shard file names `model.safetensors.index.json` lists, each checked to be a plain name (same folder). */
export function shardNamesFromIndex(text: string, indexName: string): string[] {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new CheckpointError(`${indexName}: not valid JSON (${(e as Error).message})`, indexName);
  }
  const map = (json as { weight_map?: unknown } | null)?.weight_map;
  if (typeof map !== "object" || map === null || Array.isArray(map)) {
    throw new CheckpointError(`${indexName}: missing "weight_map" object`, indexName);
  }
  const shards = new Set<string>();
  for (const [tensor, file] of Object.entries(map as Record<string, unknown>)) {
    if (typeof file !== "string" || file === "" || file.includes("/") || file.includes("\\") || file === "." || file === "..") {
      throw new CheckpointError(
        `${indexName}: weight_map entry for ${tensor} must be a file name in the same folder, found ${JSON.stringify(file)}`,
        indexName,
        tensor,
      );
    }
    shards.add(file);
  }
  if (shards.size === 0) throw new CheckpointError(`${indexName}: weight_map is empty`, indexName);
  return [...shards].sort();
}
