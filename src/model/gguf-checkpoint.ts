/**
 * A Gemma / Gemma 2 GGUF file (llama.cpp's layout) seen as a checkpoint with Hugging Face tensor
 * names and semantics: metadata → GemmaConfig, `blk.N.attn_q.weight` → `model.layers.N.self_attn.
 * q_proj.weight`, norm weights marked as stored gains (llama.cpp's converter writes 1 + w), K-quant
 * tensors re-quantized row by row to Q8_0. The tokenizer comes from the file's metadata.
 */
import { configFromHf, defaultLayerTypes, type GemmaConfig, type ModelFamily } from "./gemma/config.js";
import { CheckpointError, ConfigError } from "../errors.js";
import { tokenizerFromGguf } from "../tokenizer/gguf-tokenizer.js";
import type { GemmaTokenizer } from "../tokenizer/tokenizer.js";
import type { ByteSource } from "../weights/byte-source.js";
import type { TensorLocation, TensorSource } from "../weights/checkpoint.js";
import { GgufFile, GgufMetadataReader, type GgufTensorEntry } from "../weights/gguf.js";
import { dequantizeKQuant, K_QUANT_BLOCK_BYTES, QK_K, type KQuantName } from "../weights/k-quants.js";
import { q8_0RowBytes, quantizeQ8_0Row } from "../weights/q8_0.js";
import type { StoredTensor } from "../weights/safetensors.js";
import { expectedTensors } from "./gemma/weights.js";

/** Our own metadata key: llama.cpp infers this scalar from the model size (27B: d_model / heads). */
export const QUERY_SCALAR_KEY = (arch: string) => `${arch}.attention.query_pre_attn_scalar`;

const LAYER_TENSORS: Readonly<Record<string, string>> = {
  "input_layernorm.weight": "attn_norm.weight",
  "pre_feedforward_layernorm.weight": "ffn_norm.weight",
  "post_feedforward_layernorm.weight": "post_ffw_norm.weight",
  "self_attn.q_proj.weight": "attn_q.weight",
  "self_attn.k_proj.weight": "attn_k.weight",
  "self_attn.v_proj.weight": "attn_v.weight",
  "self_attn.o_proj.weight": "attn_output.weight",
  "mlp.gate_proj.weight": "ffn_gate.weight",
  "mlp.up_proj.weight": "ffn_up.weight",
  "mlp.down_proj.weight": "ffn_down.weight",
};

/** The GGUF name of a Hugging Face tensor name. */
export function ggufTensorName(hfName: string, family: ModelFamily): string {
  if (hfName === "model.embed_tokens.weight") return "token_embd.weight";
  if (hfName === "model.norm.weight") return "output_norm.weight";
  const layer = /^model\.layers\.(\d+)\.(.+)$/.exec(hfName);
  if (!layer) throw new Error(`no GGUF name for ${hfName}`);
  const rest = layer[2]!;
  // Gemma 1's post_attention_layernorm is its pre-MLP norm (GEMMA2.md §4); Gemma 2's is a post-norm.
  const mapped =
    rest === "post_attention_layernorm.weight"
      ? family === "gemma2"
        ? "post_attention_norm.weight"
        : "ffn_norm.weight"
      : LAYER_TENSORS[rest];
  if (!mapped) throw new Error(`no GGUF name for ${hfName}`);
  return `blk.${layer[1]}.${mapped}`;
}

const isNorm = (hfName: string) => hfName.endsWith("norm.weight");

export class GgufCheckpoint implements TensorSource {
  private readonly locations = new Map<string, TensorLocation>();
  private readonly unmapped: string[];

  private constructor(
    readonly file: GgufFile,
    readonly config: GemmaConfig,
    readonly tokenizer: GemmaTokenizer | null,
  ) {
    const byGgufName = new Map<string, string>();
    for (const hfName of expectedTensors(config).keys()) byGgufName.set(ggufTensorName(hfName, config.family), hfName);
    const reader = {
      source: { name: file.source.name },
      readTensor: (name: string) => this.readTensor(name),
      readRange: (name: string, byteOffset: number, into: Uint8Array) => this.readRange(name, byteOffset, into),
    };
    for (const entry of file.tensors.values()) {
      const hfName = byGgufName.get(entry.name);
      if (!hfName) continue;
      this.locations.set(hfName, {
        file: reader,
        entry: { name: hfName, dtype: entry.type.name, shape: entry.shape, start: entry.start, end: entry.end },
      });
    }
    this.unmapped = [...file.tensors.keys()].filter((n) => !byGgufName.has(n));
  }

  /** The file's path (messages name it; a GGUF has no separate folder). */
  get dir(): string {
    return this.file.source.name;
  }

  static async fromSource(source: ByteSource): Promise<GgufCheckpoint> {
    try {
      const file = await GgufFile.open(source);
      const meta = new GgufMetadataReader(file.metadata, source.name);
      const config = configFromGguf(meta, file, source.name);
      return new GgufCheckpoint(file, config, tokenizerFromGguf(meta, source.name));
    } catch (e) {
      await source.close();
      throw e;
    }
  }

  tensor(name: string): TensorLocation | undefined {
    return this.locations.get(name);
  }

  /** Mapped tensors by Hugging Face name, then the file's other tensors by their GGUF names. */
  tensorNames(): string[] {
    return [...this.locations.keys(), ...this.unmapped];
  }

  async readTensor(hfName: string): Promise<StoredTensor> {
    const entry = this.file.tensors.get(ggufTensorName(hfName, this.config.family))!;
    const bytes = await this.file.readBytes(entry);
    const tensor = storedTensor(entry, bytes);
    // llama.cpp's converter stores norm weights as 1 + w, which is the gain the forward pass uses.
    return isNorm(hfName) ? { ...tensor, storedAsGain: true } : tensor;
  }

  /** Stored bytes of a tensor the kernels take as they are (F32, F16, BF16, Q8_0, Q4_0), read into `into`. */
  async readRange(hfName: string, byteOffset: number, into: Uint8Array): Promise<void> {
    const entry = this.file.tensors.get(ggufTensorName(hfName, this.config.family))!;
    if (
      !["F32", "F16", "BF16", "Q8_0", "Q4_0"].includes(entry.type.name) ||
      byteOffset < 0 ||
      byteOffset + into.length > entry.end - entry.start
    )
      throw new CheckpointError(
        `${this.file.source.name}: cannot read ${hfName} (${entry.type.name}) as stored bytes`,
        this.file.source.name,
        hfName,
      );
    await this.file.source.read(entry.start + byteOffset, into.length, into);
  }

  close(): Promise<void> {
    return this.file.close();
  }
}

/** A tensor's bytes in a form the kernels take: floats and Q8_0/Q4_0 as they are, K-quants → Q8_0. */
function storedTensor(entry: GgufTensorEntry, bytes: Uint8Array): StoredTensor {
  const { shape } = entry;
  switch (entry.type.name) {
    case "F32":
      return { dtype: "f32", shape, data: new Float32Array(bytes.buffer) };
    case "F16":
      return { dtype: "f16", shape, data: new Uint16Array(bytes.buffer) };
    case "BF16":
      return { dtype: "bf16", shape, data: new Uint16Array(bytes.buffer) };
    case "Q8_0":
      return { dtype: "q8_0", shape, data: bytes };
    case "Q4_0":
      return { dtype: "q4_0", shape, data: bytes };
    case "Q4_K":
    case "Q5_K":
    case "Q6_K":
      return { dtype: "q8_0", shape, data: kQuantToQ8_0(entry.type.name, bytes, shape) };
    default:
      throw new CheckpointError(`tensor ${entry.name} has type ${entry.type.name}, which gemma-ts cannot read`, undefined, entry.name);
  }
}

/** Row by row: widen a K-quant row to f32, re-quantize it as Q8_0 (error far below the K-quant's own). */
function kQuantToQ8_0(type: KQuantName, bytes: Uint8Array, shape: number[]): Uint8Array {
  const cols = shape[shape.length - 1]!;
  const rows = shape.reduce((a, b) => a * b, 1) / cols;
  const inRowBytes = (cols / QK_K) * K_QUANT_BLOCK_BYTES[type];
  const outRowBytes = q8_0RowBytes(cols);
  const out = new Uint8Array(rows * outRowBytes);
  const row = new Float32Array(cols);
  for (let r = 0; r < rows; r++) {
    dequantizeKQuant(type, bytes, r * inRowBytes, row);
    quantizeQ8_0Row(row, out, r * outRowBytes);
  }
  return out;
}

/** GemmaConfig from GGUF metadata, checked by the same rules as a config.json. */
export function configFromGguf(meta: GgufMetadataReader, file: GgufFile, source: string): GemmaConfig {
  const arch = meta.string("general.architecture");
  if (arch !== "gemma2" && arch !== "gemma") {
    throw new ConfigError(
      `${source}: general.architecture is ${JSON.stringify(arch)}; gemma-ts reads GGUF files of "gemma2" and "gemma"`,
      "general.architecture",
    );
  }
  const key = (k: string) => `${arch}.${k}`;
  const dModel = meta.number(key("embedding_length"));
  const nLayers = meta.number(key("block_count"));
  const nHeads = meta.number(key("attention.head_count"));
  const headDim = meta.optionalNumber(key("attention.key_length")) ?? dModel / nHeads;
  const valueDim = meta.optionalNumber(key("attention.value_length")) ?? headDim;
  if (valueDim !== headDim)
    throw new ConfigError(
      `${source}: ${key("attention.value_length")} ${valueDim} differs from key_length ${headDim}`,
      key("attention.value_length"),
    );
  const embedding = file.tensors.get("token_embd.weight");
  if (!embedding) throw new CheckpointError(`${source}: missing tensor token_embd.weight`, source, "token_embd.weight");
  const hf: Record<string, unknown> = {
    model_type: arch,
    hidden_size: dModel,
    num_hidden_layers: nLayers,
    num_attention_heads: nHeads,
    num_key_value_heads: meta.optionalNumber(key("attention.head_count_kv")) ?? nHeads,
    head_dim: headDim,
    intermediate_size: meta.number(key("feed_forward_length")),
    vocab_size: embedding.shape[0],
    max_position_embeddings: meta.optionalNumber(key("context_length")),
    rms_norm_eps: meta.optionalNumber(key("attention.layer_norm_rms_epsilon")),
    rope_theta: meta.optionalNumber(key("rope.freq_base")),
    bos_token_id: meta.optionalNumber("tokenizer.ggml.bos_token_id"),
    eos_token_id: meta.optionalNumber("tokenizer.ggml.eos_token_id"),
    pad_token_id: meta.optionalNumber("tokenizer.ggml.padding_token_id"),
  };
  if (arch === "gemma2") {
    hf["sliding_window"] = meta.optionalNumber(key("attention.sliding_window")) ?? 4096;
    hf["attn_logit_softcapping"] = meta.optionalNumber(key("attn_logit_softcapping")) ?? 50;
    hf["final_logit_softcapping"] = meta.optionalNumber(key("final_logit_softcapping")) ?? 30;
    // llama.cpp scales the 27B (46 layers) by d_model / heads and the others by head_dim.
    hf["query_pre_attn_scalar"] = meta.optionalNumber(QUERY_SCALAR_KEY(arch)) ?? (nLayers === 46 ? dModel / nHeads : headDim);
  }
  return configFromHf(hf, `${source} (GGUF metadata)`);
}

/** Whether a config can be written as GGUF metadata that llama.cpp reads the same way. */
export function ggufCompatible(config: GemmaConfig): string | null {
  if (config.activation !== "gelu_tanh") return "GGUF Gemma models use the tanh GELU";
  if (config.family === "gemma2" && (config.attnSoftcap === null || config.finalSoftcap === null))
    return "GGUF Gemma 2 models have both soft-caps";
  const defaultTypes = config.family === "gemma2" ? defaultLayerTypes(config.nLayers) : config.layerTypes;
  if (config.layerTypes.some((t, i) => t !== defaultTypes[i]))
    return "GGUF Gemma 2 models alternate local and global layers, starting local";
  return null;
}
