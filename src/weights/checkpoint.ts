/**
 * A Hugging Face checkpoint folder: config.json plus one `model.safetensors` or shards listed in
 * `model.safetensors.index.json`. Opens every file's header (validated) and maps tensor → file.
 */
import { readFile, stat } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import { CheckpointError } from "../errors.js";
import { NodeFileSource } from "./byte-source.js";
import { SafetensorsFile, type StoredTensor, type TensorEntry } from "./safetensors.js";

export interface TensorLocation {
  /** The file holding the tensor (its name for messages, and a reader). */
  file: { readTensor(name: string): Promise<StoredTensor>; source: { name: string } };
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

  /** Opens a folder, or a single .safetensors file whose folder holds config.json. */
  static async open(path: string): Promise<Checkpoint> {
    const full = resolve(path);
    const info = await stat(full).catch(() => null);
    if (!info) throw new CheckpointError(`${path}: no such file or folder`, path);
    if (info.isFile()) {
      if (!full.endsWith(".safetensors")) throw new CheckpointError(`${path}: expected a checkpoint folder or a .safetensors file`, path);
      return Checkpoint.fromFiles(dirname(full), [full]);
    }
    const indexPath = join(full, "model.safetensors.index.json");
    if (await exists(indexPath)) return Checkpoint.fromFiles(full, await shardsFromIndex(indexPath), indexPath);
    const single = join(full, "model.safetensors");
    if (await exists(single)) return Checkpoint.fromFiles(full, [single]);
    throw new CheckpointError(`${path}: no model.safetensors or model.safetensors.index.json in this folder`, path);
  }

  private static async fromFiles(dir: string, paths: string[], indexPath?: string): Promise<Checkpoint> {
    const files: SafetensorsFile[] = [];
    const index = new Map<string, TensorLocation>();
    try {
      for (const p of paths) {
        const source = await NodeFileSource.open(p).catch((e: NodeJS.ErrnoException) => {
          throw new CheckpointError(`${p}: cannot open (${e.code ?? e.message})${indexPath ? `; listed in ${basename(indexPath)}` : ""}`, p);
        });
        const file = await SafetensorsFile.open(source).catch(async (e: unknown) => {
          await source.close();
          throw e;
        });
        files.push(file);
        for (const entry of file.tensors.values()) {
          const seen = index.get(entry.name);
          if (seen) throw new CheckpointError(`tensor ${entry.name} appears in both ${seen.file.source.name} and ${p}`, p, entry.name);
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

/** The shard files an index names, checked to stay inside the folder. */
async function shardsFromIndex(indexPath: string): Promise<string[]> {
  let json: unknown;
  try {
    json = JSON.parse(await readFile(indexPath, "utf8"));
  } catch (e) {
    throw new CheckpointError(`${indexPath}: not valid JSON (${(e as Error).message})`, indexPath);
  }
  const map = (json as { weight_map?: unknown } | null)?.weight_map;
  if (typeof map !== "object" || map === null || Array.isArray(map)) {
    throw new CheckpointError(`${indexPath}: missing "weight_map" object`, indexPath);
  }
  const dir = dirname(indexPath);
  const shards = new Set<string>();
  for (const [tensor, file] of Object.entries(map as Record<string, unknown>)) {
    if (typeof file !== "string" || file !== basename(file)) {
      throw new CheckpointError(`${indexPath}: weight_map entry for ${tensor} must be a file name in the same folder, found ${JSON.stringify(file)}`, indexPath, tensor);
    }
    shards.add(join(dir, file));
  }
  if (shards.size === 0) throw new CheckpointError(`${indexPath}: weight_map is empty`, indexPath);
  return [...shards].sort();
}

async function exists(path: string): Promise<boolean> {
  return (await stat(path).catch(() => null)) !== null;
}
