/** Opens a checkpoint folder (or one .safetensors file) from disk: the Node adapter of Checkpoint. */
import { readFile, stat } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import { CheckpointError } from "../errors.js";
import { Checkpoint, shardNamesFromIndex } from "./checkpoint.js";
import { NodeFileSource } from "./node-file-source.js";

/** Opens a folder, or a single .safetensors file whose folder holds config.json. */
export async function openCheckpointFolder(path: string): Promise<Checkpoint> {
  const full = resolve(path);
  const info = await stat(full).catch(() => null);
  if (!info) throw new CheckpointError(`${path}: no such file or folder`, path);
  if (info.isFile()) {
    if (!full.endsWith(".safetensors")) throw new CheckpointError(`${path}: expected a checkpoint folder or a .safetensors file`, path);
    return Checkpoint.fromSources(dirname(full), [opener(full)]);
  }
  const indexPath = join(full, "model.safetensors.index.json");
  if (await exists(indexPath)) {
    const text = await readFile(indexPath, "utf8");
    const shards = shardNamesFromIndex(text, indexPath).map((name) => opener(join(full, name), indexPath));
    return Checkpoint.fromSources(full, shards);
  }
  const single = join(full, "model.safetensors");
  if (await exists(single)) return Checkpoint.fromSources(full, [opener(single)]);
  throw new CheckpointError(`${path}: no model.safetensors or model.safetensors.index.json in this folder`, path);
}

function opener(path: string, indexPath?: string): () => Promise<NodeFileSource> {
  return () =>
    NodeFileSource.open(path).catch((e: NodeJS.ErrnoException) => {
      throw new CheckpointError(
        `${path}: cannot open (${e.code ?? e.message})${indexPath ? `; listed in ${basename(indexPath)}` : ""}`,
        path,
      );
    });
}

async function exists(path: string): Promise<boolean> {
  return (await stat(path).catch(() => null)) !== null;
}
