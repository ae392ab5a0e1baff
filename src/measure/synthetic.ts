/**
 * Synthetic checkpoints for benchmarks: every tensor a config needs, in bf16, f16 or f32, filled
 * with small random values as it is read, so the exact shapes of a published model run without a
 * download.
 */
import { Rng } from "../generate/rng.js";
import type { ModelConfig } from "../model/causal-lm.js";
import { expectedTensorsFor } from "../model/families.js";
import type { TensorLocation, TensorSource } from "../weights/checkpoint.js";
import { bf16ToF32, f32ToF16, type WeightDtype } from "../weights/dtype.js";
import type { StoredTensor } from "../weights/safetensors.js";

/** bf16 bits of a value with |x| in [2^-8, 2^-2] and random sign, from 16 random bits. */
function smallBf16(bits: number): number {
  return (bits & 0x8000) | ((119 + ((bits >>> 7) % 7)) << 7) | (bits & 0x7f);
}

const POOL_SIZE = 1 << 20;
const CHUNK = 4096;

export class SyntheticSource implements TensorSource {
  readonly dir: string;
  private readonly locations = new Map<string, TensorLocation>();

  constructor(config: ModelConfig, seed = 1, dtype: WeightDtype = "bf16") {
    this.dir = `synthetic ${config.family}`;
    const rng = new Rng(seed);
    // Tensors are tiled from a pool of random values at random offsets: the values do not change
    // the cost of a forward pass, and copying keeps building a 9B-shaped model to seconds.
    const pool = new Uint16Array(POOL_SIZE);
    for (let i = 0; i < pool.length; i++) pool[i] = smallBf16(rng.uint32() & 0xffff);
    const values = dtype === "f32" ? Float32Array.from(pool, bf16ToF32) : dtype === "f16" ? pool.map((b) => f32ToF16(bf16ToF32(b))) : pool;
    const file = {
      source: { name: this.dir },
      readTensor: async (name: string): Promise<StoredTensor> => {
        const { shape } = this.locations.get(name)!.entry;
        const count = shape.reduce((a, b) => a * b, 1);
        const data = values instanceof Float32Array ? new Float32Array(count) : new Uint16Array(count);
        for (let at = 0; at < count; at += CHUNK) {
          const from = rng.uint32() % (POOL_SIZE - CHUNK);
          data.set(values.subarray(from, from + Math.min(CHUNK, count - at)), at);
        }
        return { dtype, shape, data };
      },
      // Stored bytes straight into the backend's memory, in the loader's chunks, as a real file's
      // are: a whole 1.3 GB bf16 embedding built at once had put the bench's peak RSS 50% over the weights.
      readRange: async (_name: string, byteOffset: number, into: Uint8Array): Promise<void> => {
        const elementBytes = values.BYTES_PER_ELEMENT;
        const pool = new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
        const tile = CHUNK * elementBytes;
        // Tiles start element-aligned in the pool, and at the element the range starts within.
        for (let at = 0, skew = byteOffset % elementBytes; at < into.length; at += tile - skew, skew = 0) {
          const from = (rng.uint32() % (POOL_SIZE - CHUNK)) * elementBytes + skew;
          into.set(pool.subarray(from, from + Math.min(tile - skew, into.length - at)), at);
        }
      },
    };
    for (const [name, shape] of expectedTensorsFor(config)) {
      const bytes = (dtype === "f32" ? 4 : 2) * shape.reduce((a, b) => a * b, 1);
      this.locations.set(name, { file, entry: { name, dtype: dtype.toUpperCase(), shape, start: 0, end: bytes } });
    }
  }

  tensor(name: string): TensorLocation | undefined {
    return this.locations.get(name);
  }

  tensorNames(): string[] {
    return [...this.locations.keys()];
  }
}
