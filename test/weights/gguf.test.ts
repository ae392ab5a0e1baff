import assert from "node:assert/strict";
import { appendFileSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { CheckpointError, ConfigError, type GemmaError } from "../../src/errors.js";
import { loadConfig, loadModel } from "../../src/gemma.js";
import type { GemmaConfig } from "../../src/model/gemma/config.js";
import { GgufCheckpoint, ggufTensorName } from "../../src/model/gguf-checkpoint.js";
import { expectedTensors } from "../../src/model/gemma/weights.js";
import { encodeGgufModel, ggufModelParts, type GgufMatrixType, type GgufVocabulary } from "../../src/model/gguf-export.js";
import { openCheckpointFolder } from "../../src/weights/checkpoint-folder.js";
import { encodeGguf } from "../../src/weights/gguf-writer.js";
import { gguv } from "../../src/weights/gguf-values.js";
import { f32ToF16 } from "../../src/weights/dtype.js";
import { dequantizeKQuant, K_QUANT_DTYPE } from "../../src/weights/k-quants.js";
import type { NamedTensor } from "../../src/weights/safetensors-writer.js";
import { FIXTURES, tinyGemma2Json, writeRandomModel } from "../helpers/random-model.js";
import { randomKQuantBytes } from "../helpers/k-quant-blocks.js";
import { gemmaGgufVocab, gemmaTokenizer, GEMMA_TOKENIZER_DIR } from "../helpers/tokenizer.js";
import { tempDir } from "../helpers/temp.js";

interface Fixture {
  input_ids: number[];
  logits: number[][];
  greedy: { generated_ids: number[] };
}

/** Writes a checkpoint folder as a GGUF file next to nothing else (a temp folder of its own). */
async function exportGguf(dir: string, matrixType: GgufMatrixType, vocabulary?: GgufVocabulary): Promise<string> {
  const config = (await loadConfig(dir)) as GemmaConfig;
  const ckpt = await openCheckpointFolder(dir);
  // Written piece by piece, as files over 4 GiB must be; encodeGgufModel is checked equal below.
  const parts = await ggufModelParts(ckpt, config, { matrixType, vocabulary });
  await ckpt.close();
  const path = join(tempDir("gemma-ts-gguf"), "model.gguf");
  writeFileSync(path, "");
  for (const part of parts) appendFileSync(path, part);
  return path;
}

function maxAbsDiff(a: Float32Array, b: Float32Array | number[]): number {
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i]! - b[i]!));
  return max;
}

describe("GGUF models", () => {
  const SUCCESSORS = ["hf_gemma3", "hf_gemma4_dense", "hf_gemma4_moe", "hf_gemma4_kvshare", "hf_gemma4_keqv"];
  for (const name of ["tiny_a", "tiny_b_27blike", "g1_tiny", ...SUCCESSORS]) {
    it(`${name}: an F32 GGUF gives exactly the safetensors logits`, async () => {
      const dir = `${FIXTURES}${name}`;
      const fixture = JSON.parse(readFileSync(join(dir, "fixture.json"), "utf8")) as Fixture;
      const fromSafetensors = await loadModel(dir, { kernels: "js" });
      const fromGguf = await loadModel(await exportGguf(dir, "F32"), { kernels: "js" });
      assert.deepEqual(fromGguf.config, fromSafetensors.config);
      const expected = await fromSafetensors.logits(fixture.input_ids);
      const actual = await fromGguf.logits(fixture.input_ids);
      assert.equal(maxAbsDiff(actual, expected), 0);
      assert.ok(maxAbsDiff(actual, fixture.logits.flat()) <= 1e-2);
    });
  }

  it("Gemma 3/4 as Q8_0 GGUF: the logits of --quant q8_0, top-1 as the reference at >= 95% of positions, greedy tokens identical", async () => {
    for (const name of SUCCESSORS) {
      const dir = `${FIXTURES}${name}`;
      const fixture = JSON.parse(readFileSync(join(dir, "fixture.json"), "utf8")) as Fixture;
      const q8 = await loadModel(await exportGguf(dir, "Q8_0"));
      const actual = await q8.logits(fixture.input_ids);
      // The same blocks as quantizing the safetensors on load.
      assert.equal(maxAbsDiff(actual, await (await loadModel(dir, { quant: "q8_0" })).logits(fixture.input_ids)), 0, name);
      const vocab = q8.config.vocabSize;
      const argmax = (row: ArrayLike<number>) => Array.from(row).reduce((best, x, j, all) => (x > all[best]! ? j : best), 0);
      const agree = fixture.logits.filter((row, i) => argmax(row) === argmax(actual.subarray(i * vocab, (i + 1) * vocab))).length;
      assert.ok(agree >= 0.95 * fixture.logits.length, `${name}: top-1 agrees at ${agree} of ${fixture.logits.length} positions`);
      const ids: number[] = [];
      for await (const t of q8.generate(fixture.input_ids.slice(0, 12), { temperature: 0, maxTokens: 16 })) ids.push(t.id);
      assert.deepEqual(ids, fixture.greedy.generated_ids, name);
    }
  });

  it("writes the same bytes in one array (encodeGgufModel) as piece by piece (ggufModelParts)", async () => {
    const dir = `${FIXTURES}tiny_b_27blike`;
    const config = (await loadConfig(dir)) as GemmaConfig;
    const ckpt = await openCheckpointFolder(dir);
    const whole = await encodeGgufModel(ckpt, config, { matrixType: "Q4_0" });
    const parts = await ggufModelParts(ckpt, config, { matrixType: "Q4_0" });
    await ckpt.close();
    assert.ok(parts.length > config.nLayers, "one piece per tensor at least");
    assert.deepEqual(Buffer.concat(parts), Buffer.from(whole));
  });

  it("F16 and Q8_0 GGUFs match the safetensors path within their quantization error", async () => {
    const dir = `${FIXTURES}tiny_a`;
    const fixture = JSON.parse(readFileSync(join(dir, "fixture.json"), "utf8")) as Fixture;
    // F16 matrices read as the same f16 values in a safetensors file (norms kept f32 in both).
    const f16 = await loadModel(await exportGguf(dir, "F16"), { kernels: "js" });
    const f16Dir = writeRandomModel(JSON.parse(readFileSync(join(dir, "config.json"), "utf8")) as Record<string, unknown>, 1, () =>
      readFixtureTensors(dir).map((t) =>
        t.shape.length === 2 ? { ...t, dtype: "f16", data: Uint16Array.from(t.data, (v) => f32ToF16(v)) } : t,
      ),
    );
    const f16Reference = await loadModel(f16Dir, { kernels: "js" });
    assert.equal(maxAbsDiff(await f16.logits(fixture.input_ids), await f16Reference.logits(fixture.input_ids)), 0);
    // Q8_0 blocks from the file are the blocks --quant q8_0 makes: identical logits.
    const q8File = await loadModel(await exportGguf(dir, "Q8_0"), { kernels: "js" });
    const q8Loaded = await loadModel(dir, { kernels: "js", quant: "q8_0" });
    const ids = fixture.input_ids;
    assert.equal(maxAbsDiff(await q8File.logits(ids), await q8Loaded.logits(ids)), 0);
    const q4File = await loadModel(await exportGguf(dir, "Q4_0"), { kernels: "wasm" });
    const q4Loaded = await loadModel(dir, { kernels: "wasm", quant: "q4_0" });
    assert.ok(maxAbsDiff(await q4File.logits(ids), await q4Loaded.logits(ids)) < 1e-4);
  });

  it("runs a Q8_0 GGUF on the wasm backend like the js backend", async () => {
    const path = await exportGguf(`${FIXTURES}tiny_a`, "Q8_0");
    const ids = [2, 194, 93, 84, 96];
    const js = await (await loadModel(path, { kernels: "js" })).logits(ids);
    const wasm = await (await loadModel(path, { kernels: "wasm" })).logits(ids);
    assert.ok(maxAbsDiff(js, wasm) < 1e-3);
  });

  it("runs Q4_K / Q5_K / Q6_K tensors as stored, on both backends, like their dequantized values", async () => {
    // A 256-wide model whose matrices are random K-quant blocks; the reference is the same values
    // dequantized to f32 in a safetensors file.
    const hf = tinyGemma2Json({
      hidden_size: 256,
      head_dim: 64,
      num_attention_heads: 4,
      num_key_value_heads: 2,
      query_pre_attn_scalar: 64,
      intermediate_size: 256,
      num_hidden_layers: 2,
    });
    const kinds = ["Q4_K", "Q5_K", "Q6_K"] as const;
    let counter = 0;
    const blocks = new Map<string, { type: (typeof kinds)[number]; bytes: Uint8Array }>();
    const dir = writeRandomModel(hf, 3, (tensors: NamedTensor[]) =>
      tensors.map((t) => {
        if (t.shape.length !== 2) return t;
        const type = kinds[counter++ % 3]!;
        const values = t.shape[0]! * t.shape[1]!;
        const bytes = randomKQuantBytes(K_QUANT_DTYPE[type], values, counter);
        const data = new Float32Array(values);
        dequantizeKQuant(K_QUANT_DTYPE[type], bytes, 0, data);
        blocks.set(t.name, { type, bytes });
        return { ...t, data };
      }),
    );
    const config = (await loadConfig(dir)) as GemmaConfig;
    const ckpt = await openCheckpointFolder(dir);
    const f32Gguf = await encodeGgufModel(ckpt, config, { matrixType: "F32" });
    await ckpt.close();
    // Swap each matrix's F32 bytes for its K-quant blocks by rewriting the file from parts.
    const reread = await GgufCheckpoint.fromSource(memorySource(f32Gguf, "f32.gguf"));
    const tensors = [];
    for (const [hfName] of expectedTensors(config)) {
      const entry = reread.file.tensors.get(ggufTensorName(hfName, "gemma2"))!;
      const k = blocks.get(hfName);
      tensors.push(
        k
          ? { name: entry.name, type: k.type, shape: entry.shape, data: k.bytes }
          : { name: entry.name, type: "F32" as const, shape: entry.shape, data: await reread.file.readBytes(entry) },
      );
    }
    const path = join(tempDir("gemma-ts-gguf"), "kquant.gguf");
    writeFileSync(path, encodeGguf(metadataOf(reread), tensors));
    const ids = [2, 5, 17, 33, 90];
    const reference = await (await loadModel(dir, { kernels: "js" })).logits(ids);
    const js = await loadModel(path, { kernels: "js" });
    const wasm = await loadModel(path, { kernels: "wasm" });
    // Held as stored: the blocks' bytes plus the f32 norms, not widened or re-quantized.
    const blockBytes = [...blocks.values()].reduce((sum, k) => sum + k.bytes.length, 0);
    assert.ok(
      js.weightBytes >= blockBytes && js.weightBytes < blockBytes * 1.05,
      `${js.weightBytes} bytes held for ${blockBytes} of blocks`,
    );
    const fromJs = await js.logits(ids);
    const spread = Math.max(...reference) - Math.min(...reference);
    assert.ok(Math.max(...reference.map(Math.abs)) < 25 && spread > 5, `logits in the soft-cap's linear range, spread ${spread}`);
    const fromWasm = await wasm.logits(ids);
    assert.ok(maxAbsDiff(fromJs, fromWasm) < 1e-3, `js vs wasm ${maxAbsDiff(fromJs, fromWasm)}`);
    // Against the f32 values: only the activations' int8 rounding (one scale per 256, as llama.cpp's Q8_K) differs.
    const vocab = fromJs.length / ids.length;
    const argmax = (v: Float32Array, p: number) =>
      v.subarray(p * vocab, (p + 1) * vocab).reduce((best, x, i, row) => (x > row[best]! ? i : best), 0);
    for (let p = 0; p < ids.length; p++) assert.equal(argmax(fromJs, p), argmax(reference, p), `top-1 at position ${p}`);
    // Measured 0.55 of a 25.7 spread, as much as re-quantizing the same values to Q8_0 (0.54).
    assert.ok(maxAbsDiff(fromJs, reference) < 0.03 * spread, `K-quant kernels vs f32 values: ${maxAbsDiff(fromJs, reference)}`);
  });

  it("tokenizes from the GGUF vocabulary exactly as tokenizer.json does", async () => {
    const dir = `${FIXTURES}tiny_a`;
    const vocab = gemmaGgufVocab();
    // The tiny model's embedding has 512 rows, so only the vocabulary is checked here, not generation.
    const config = (await loadConfig(dir)) as GemmaConfig;
    const ckpt = await openCheckpointFolder(dir);
    const template = (JSON.parse(readFileSync(join(GEMMA_TOKENIZER_DIR, "tokenizer_config.json"), "utf8")) as { chat_template: string })
      .chat_template;
    const bytes = await encodeGgufModel(ckpt, { ...config }, { matrixType: "F32", vocabulary: { ...vocab, chatTemplate: template } });
    await ckpt.close();
    const gguf = await GgufCheckpoint.fromSource(memorySource(bytes, "vocab.gguf"));
    const fromGguf = gguf.tokenizer!;
    const hf = gemmaTokenizer();
    assert.equal(fromGguf.vocabSize, 256000);
    // As llama.cpp expects: the chat markers are CONTROL pieces and the unknown piece is named.
    const meta = gguf.file.metadata;
    const types = meta["tokenizer.ggml.token_type"] as number[];
    for (const marker of ["<start_of_turn>", "<end_of_turn>"]) assert.equal(types[hf.tokenToId(marker)!], 3, marker);
    assert.equal(meta["tokenizer.ggml.unknown_token_id"], hf.tokenToId("<unk>"));
    assert.equal(fromGguf.chatTemplate, template);
    assert.deepEqual([fromGguf.bosTokenId, fromGguf.eosTokenId, fromGguf.startOfTurnId, fromGguf.endOfTurnId], [2, 1, 106, 107]);
    const texts = [
      "The quick brown fox jumps over the lazy dog.",
      "def add(a, b):\n    return a + b\n",
      "日本語のテキスト 你好，世界 🦙 llamas 👍🏽 a𒀀b naïve café",
      "  two  spaces\tand\ttabs   \n\n\nthree newlines",
      "<start_of_turn>user\nHi <b>there</b><end_of_turn>\n",
      readFileSync(new URL("../../README.md", import.meta.url), "utf8"),
    ];
    for (const text of texts) {
      for (const parseControlTokens of [true, false]) {
        const expected = hf.encode(text, { parseControlTokens });
        assert.deepEqual(fromGguf.encode(text, { parseControlTokens }), expected, JSON.stringify(text.slice(0, 40)));
        assert.equal(fromGguf.decode(expected), hf.decode(expected));
        assert.equal(fromGguf.decode(expected, { skipSpecialTokens: true }), hf.decode(expected, { skipSpecialTokens: true }));
      }
    }
  });
});

describe("corrupt GGUF files give clear errors", () => {
  const good = async () => readFileSync(await exportGguf(`${FIXTURES}tiny_a`, "F32"));
  const write = (bytes: Uint8Array) => {
    const path = join(tempDir("gemma-ts-bad"), "bad.gguf");
    writeFileSync(path, bytes);
    return path;
  };
  const rejects = async (bytes: Uint8Array, pattern: RegExp, type: new (message: string) => GemmaError = CheckpointError) => {
    await assert.rejects(loadModel(write(bytes), { kernels: "js" }), (e: Error) => {
      assert.ok(e instanceof type, `${e.name}: ${e.message}`);
      assert.match(e.message, pattern);
      assert.match(e.message, /bad\.gguf/);
      return true;
    });
  };
  /** Byte offset of a tensor info's type field. */
  const typeField = (bytes: Uint8Array, tensor: string, dims: number) =>
    Buffer.from(bytes).indexOf(Buffer.from(tensor)) + tensor.length + 4 + 8 * dims;

  it("bad magic", async () => {
    const bytes = await good();
    bytes.set([0x47, 0x47, 0x55, 0x58]);
    await rejects(bytes, /not a GGUF file/);
  });

  it("truncated in the header and in the data", async () => {
    const bytes = await good();
    await rejects(bytes.subarray(0, 200), /truncated|ends early|not a valid GGUF/);
    await rejects(bytes.subarray(0, bytes.length - 100), /run past the end of the file/);
  });

  it("a tensor out of range and an unknown type", async () => {
    const bytes = await good();
    const offsetAt = typeField(bytes, "output_norm.weight", 1) + 4;
    const far = new Uint8Array(bytes);
    new DataView(far.buffer).setBigUint64(offsetAt, 1n << 40n, true);
    await rejects(far, /output_norm\.weight.*run past the end/);
    const unknown = new Uint8Array(bytes);
    new DataView(unknown.buffer).setUint32(typeField(bytes, "output_norm.weight", 1), 99, true);
    await rejects(unknown, /output_norm\.weight: unknown GGML type 99/);
    const unsupported = new Uint8Array(bytes);
    // Q4_1 (3) over a 1-D tensor of 64 values: valid GGUF, but not a type gemma-ts reads.
    new DataView(unsupported.buffer).setUint32(typeField(bytes, "output_norm.weight", 1), 3, true);
    await rejects(unsupported, /Q4_1.*gemma-ts reads/);
  });

  it("general.alignment that is not a power of two from 8 (2^31 once overflowed the offsets)", async () => {
    for (const alignment of [1, 48, 2 ** 31]) {
      const bytes = encodeGguf({ "general.architecture": gguv.str("gemma2"), "general.alignment": gguv.u32(alignment) }, []);
      await rejects(bytes, new RegExp(`general\\.alignment ${alignment} is not a power of two from 8 to 65536`));
    }
  });

  it("a block_count that does not match the layers in the file", async () => {
    const bytes = await good();
    const key = Buffer.from("gemma2.block_count");
    const valueAt = Buffer.from(bytes).indexOf(key) + key.length + 4;
    const held = new DataView(bytes.buffer, bytes.byteOffset).getUint32(valueAt, true);
    const fewer = new Uint8Array(bytes);
    new DataView(fewer.buffer).setUint32(valueAt, 1, true);
    await rejects(fewer, new RegExp(`the config says 1 layers but the weights hold ${held}`));
    const absurd = new Uint8Array(bytes);
    new DataView(absurd.buffer).setUint32(valueAt, 1_000_000, true);
    await rejects(absurd, /num_hidden_layers must be a positive integer up to 1,024; found 1000000/, ConfigError);
  });

  it("another architecture and missing metadata", async () => {
    const llama = encodeGguf({ "general.architecture": gguv.str("llama") }, []);
    await rejects(llama, /general\.architecture is "llama"/, ConfigError);
    const noLength = encodeGguf({ "general.architecture": gguv.str("gemma2") }, []);
    await rejects(noLength, /gemma2\.embedding_length is missing/);
  });
});

/** The fixture's f32 tensors, read synchronously from its single safetensors file. */
function readFixtureTensors(dir: string): NamedTensor[] {
  const bytes = readFileSync(join(dir, "model.safetensors"));
  const headerLength = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + headerLength).toString("utf8")) as Record<
    string,
    { dtype: string; shape: number[]; data_offsets: [number, number] }
  >;
  return Object.entries(header)
    .filter(([name]) => name !== "__metadata__")
    .map(
      ([
        name,
        {
          dtype,
          shape,
          data_offsets: [from, to],
        },
      ]) => {
        assert.equal(dtype, "F32");
        const data = new Float32Array(
          bytes.buffer.slice(bytes.byteOffset + 8 + headerLength + from, bytes.byteOffset + 8 + headerLength + to),
        );
        return { name, dtype: "f32" as const, shape, data };
      },
    );
}

function memorySource(bytes: Uint8Array, name: string) {
  return {
    name,
    size: bytes.length,
    read: async (offset: number, length: number, into?: Uint8Array) => {
      const out = into ?? new Uint8Array(length);
      out.set(bytes.subarray(offset, offset + length));
      return out;
    },
    close: async () => {},
  };
}

function metadataOf(ckpt: GgufCheckpoint) {
  const out: Record<string, ReturnType<typeof gguv.u32>> = {};
  for (const [key, value] of Object.entries(ckpt.file.metadata)) {
    out[key] =
      typeof value === "string" ? gguv.str(value) : Number.isInteger(value) ? gguv.u32(value as number) : gguv.f32(value as number);
  }
  return out;
}
