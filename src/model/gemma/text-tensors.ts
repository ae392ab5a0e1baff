/**
 * The language model inside a multimodal Gemma 3 / Gemma 4 checkpoint: its tensors sit under
 * `language_model.model.` (transformers 4.x) or `model.language_model.` (transformers 5) next to
 * the vision and audio towers. Seen through this view they carry the text model's own names
 * (`model.layers.0...`) and the towers' tensors are not listed at all.
 */
import type { TensorLocation, TensorSource } from "../../weights/checkpoint.js";

const TEXT_PREFIXES = ["model.language_model.", "language_model.model."];

/** `source` with its language model's tensors renamed to `model.*`; `source` itself when it has no such prefix. */
export function textModelTensors(source: TensorSource): TensorSource {
  const names = source.tensorNames();
  const prefix = TEXT_PREFIXES.find((p) => names.some((n) => n.startsWith(p)));
  if (!prefix) return source;
  const stored = new Map<string, string>();
  for (const name of names) if (name.startsWith(prefix)) stored.set(`model.${name.slice(prefix.length)}`, name);
  return {
    dir: source.dir,
    tensorNames: () => [...stored.keys()],
    tensor(name: string): TensorLocation | undefined {
      const storedName = stored.get(name);
      const location = storedName === undefined ? undefined : source.tensor(storedName);
      if (!location || storedName === undefined) return undefined;
      const { file } = location;
      return {
        entry: { ...location.entry, name },
        file: {
          source: file.source,
          readTensor: () => file.readTensor(storedName),
          ...(file.readRange
            ? { readRange: (_: string, byteOffset: number, into: Uint8Array) => file.readRange!(storedName, byteOffset, into) }
            : {}),
        },
      };
    },
  };
}
