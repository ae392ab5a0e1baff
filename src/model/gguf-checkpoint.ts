/**
 * A Gemma GGUF file (llama.cpp's layout: gemma, gemma2, gemma3, gemma4) seen as a checkpoint with
 * Hugging Face tensor names and semantics: metadata → GemmaConfig (gguf-config.ts), `blk.N.attn_q.
 * weight` → `model.layers.N.self_attn.q_proj.weight`, norm weights marked as stored gains (llama.cpp's
 * converter writes 1 + w for Gemma 1-3 and w for Gemma 4, each the gain), every tensor type the
 * kernels run (F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q5_K, Q6_K) held as stored. The tokenizer comes
 * from the file's metadata.
 */
import type { GemmaConfig, ModelFamily } from "./gemma/config.js";
import { CheckpointError } from "../errors.js";
import { configFromGguf, ROPE_FREQS_TENSOR } from "./gguf-config.js";
import { tokenizerFromGguf } from "../tokenizer/gguf-tokenizer.js";
import type { GemmaTokenizer } from "../tokenizer/tokenizer.js";
import type { ByteSource } from "../weights/byte-source.js";
import type { TensorLocation, TensorSource } from "../weights/checkpoint.js";
import { GgufFile, GgufMetadataReader, type GgufTensorEntry } from "../weights/gguf.js";
import { K_QUANT_DTYPE } from "../weights/k-quants.js";
import type { StoredTensor } from "../weights/safetensors.js";
import { expectedTensors } from "./gemma/weights.js";

/** Hugging Face layer tensor → llama.cpp's name within `blk.N.` (gguf-py constants.py: gemma, gemma2, gemma3, gemma4). */
const LAYER_TENSORS: Readonly<Record<string, string>> = {
  "input_layernorm.weight": "attn_norm.weight",
  "pre_feedforward_layernorm.weight": "ffn_norm.weight",
  "post_feedforward_layernorm.weight": "post_ffw_norm.weight",
  "self_attn.q_proj.weight": "attn_q.weight",
  "self_attn.k_proj.weight": "attn_k.weight",
  "self_attn.v_proj.weight": "attn_v.weight",
  "self_attn.o_proj.weight": "attn_output.weight",
  "self_attn.q_norm.weight": "attn_q_norm.weight",
  "self_attn.k_norm.weight": "attn_k_norm.weight",
  "mlp.gate_proj.weight": "ffn_gate.weight",
  "mlp.up_proj.weight": "ffn_up.weight",
  "mlp.down_proj.weight": "ffn_down.weight",
  "pre_feedforward_layernorm_2.weight": "pre_ffw_norm_2.weight",
  "post_feedforward_layernorm_1.weight": "post_ffw_norm_1.weight",
  "post_feedforward_layernorm_2.weight": "post_ffw_norm_2.weight",
  "per_layer_input_gate.weight": "inp_gate.weight",
  "per_layer_projection.weight": "proj.weight",
  "post_per_layer_input_norm.weight": "post_norm.weight",
  layer_scalar: "layer_output_scale.weight",
  "router.proj.weight": "ffn_gate_inp.weight",
  "router.scale": "ffn_gate_inp.scale",
  "router.per_expert_scale": "ffn_down_exps.scale",
  "experts.gate_up_proj": "ffn_gate_up_exps.weight",
  "experts.down_proj": "ffn_down_exps.weight",
};

const MODEL_TENSORS: Readonly<Record<string, string>> = {
  "model.embed_tokens.weight": "token_embd.weight",
  "model.norm.weight": "output_norm.weight",
  "model.embed_tokens_per_layer.weight": "per_layer_token_embd.weight",
  "model.per_layer_model_projection.weight": "per_layer_model_proj.weight",
  "model.per_layer_projection_norm.weight": "per_layer_proj_norm.weight",
};

/** The GGUF name of a Hugging Face tensor name. */
export function ggufTensorName(hfName: string, family: ModelFamily): string {
  const top = MODEL_TENSORS[hfName];
  if (top) return top;
  const layer = /^model\.layers\.(\d+)\.(.+)$/.exec(hfName);
  if (!layer) throw new Error(`no GGUF name for ${hfName}`);
  const rest = layer[2]!;
  // Gemma 1's post_attention_layernorm is its pre-MLP norm (GEMMA2.md §4); later ones' is a post-norm.
  const mapped =
    rest === "post_attention_layernorm.weight"
      ? family === "gemma"
        ? "ffn_norm.weight"
        : "post_attention_norm.weight"
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
      const ropeFreqs = file.tensors.get(ROPE_FREQS_TENSOR);
      const freqs = ropeFreqs?.type.name === "F32" ? new Float32Array((await file.readBytes(ropeFreqs)).slice().buffer) : null;
      const config = configFromGguf(meta, file, source.name, freqs);
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

  /** Stored bytes of a tensor the kernels take as they are (F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q5_K, Q6_K), read into `into`. */
  async readRange(hfName: string, byteOffset: number, into: Uint8Array): Promise<void> {
    const entry = this.file.tensors.get(ggufTensorName(hfName, this.config.family))!;
    if (
      !["F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_K", "Q5_K", "Q6_K"].includes(entry.type.name) ||
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

/** A tensor's bytes in a form the kernels take: every type gemma-ts reads, as stored. */
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
      return { dtype: K_QUANT_DTYPE[entry.type.name], shape, data: bytes };
    default:
      throw new CheckpointError(`tensor ${entry.name} has type ${entry.type.name}, which gemma-ts cannot read`, undefined, entry.name);
  }
}
