import assert from "node:assert/strict";
import { copyFileSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { CheckpointError, ConfigError } from "../../src/errors.js";
import { loadModel } from "../../src/gemma.js";
import { NodeFileSource } from "../../src/weights/node-file-source.js";
import { openCheckpointFolder } from "../../src/weights/checkpoint-folder.js";
import { SafetensorsFile } from "../../src/weights/safetensors.js";
import { encodeSafetensors, type NamedTensor } from "../../src/weights/safetensors-writer.js";
import { FIXTURES, tinyGemma2Json, writeRandomModel } from "../helpers/random-model.js";
import { tempDir } from "../helpers/temp.js";

const tmp = () => tempDir("gemma-ts-ckpt");

/** A folder with the tiny_a config and the given safetensors bytes. */
function folderWith(bytes: Uint8Array, config = readFileSync(`${FIXTURES}tiny_a/config.json`, "utf8")): string {
  const dir = tmp();
  writeFileSync(join(dir, "config.json"), config);
  writeFileSync(join(dir, "model.safetensors"), bytes);
  return dir;
}

/** A safetensors file with a hand-written header (u64 length + JSON) followed by `dataBytes` zero bytes. */
function rawFile(header: unknown, dataBytes: number, lengthOverride?: bigint): Uint8Array {
  const json = new TextEncoder().encode(typeof header === "string" ? header : JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + dataBytes);
  new DataView(out.buffer).setBigUint64(0, lengthOverride ?? BigInt(json.length), true);
  out.set(json, 8);
  return out;
}

async function openRaw(bytes: Uint8Array): Promise<SafetensorsFile> {
  const dir = tmp();
  writeFileSync(join(dir, "x.safetensors"), bytes);
  return SafetensorsFile.open(await NodeFileSource.open(join(dir, "x.safetensors")));
}

const rejects = (promise: Promise<unknown>, message: RegExp) =>
  assert.rejects(promise, (e: unknown) => {
    assert.ok(e instanceof CheckpointError || e instanceof ConfigError, `expected a typed error, got ${String(e)}`);
    assert.match((e as Error).message, message);
    return true;
  });

describe("safetensors validation", () => {
  const tensor = (dtype: string, shape: number[], offsets: number[]) => ({ dtype, shape, data_offsets: offsets });

  it("reads tensors lazily and in their stored width", async () => {
    const f16 = new Uint16Array([0x3c00, 0xc000]); // 1, -2
    const bf16 = new Uint16Array([0x3f80, 0x4040]); // 1, 3
    const file = await openRaw(
      encodeSafetensors([
        { name: "a", dtype: "f16", shape: [2], data: f16 },
        { name: "b", dtype: "bf16", shape: [1, 2], data: bf16 },
        { name: "c", dtype: "f32", shape: [2], data: new Float32Array([0.5, 7]) },
      ]),
    );
    const a = await file.readTensor("a");
    assert.equal(a.dtype, "f16");
    assert.ok(a.data instanceof Uint16Array);
    assert.deepEqual([...a.data], [0x3c00, 0xc000]);
    assert.deepEqual((await file.readTensor("b")).shape, [1, 2]);
    assert.deepEqual([...(await file.readTensor("c")).data], [0.5, 7]);
    await file.close();
  });

  it("rejects a file shorter than the length prefix", async () => {
    await rejects(openRaw(new Uint8Array(5)), /truncated: 5 bytes, shorter than the 8-byte header length/);
  });

  it("rejects a header length larger than the file", async () => {
    await rejects(openRaw(rawFile({}, 0, 5000n)), /header length 5000 runs past the end of the \d+-byte file/);
  });

  it("rejects an insane header length", async () => {
    await rejects(openRaw(rawFile({}, 0, 1n << 40n)), /header length \d+ is not sane/);
  });

  it("rejects a header that is not JSON", async () => {
    await rejects(openRaw(rawFile('{"a": [1, 2', 0)), /header is not valid JSON/);
  });

  it("closes its source when the header is refused (no file handle left to the garbage collector)", async () => {
    const bytes = rawFile('{"a": [1, 2', 0);
    let closed = 0;
    const source = {
      name: "bad.safetensors",
      size: bytes.length,
      read: async (offset: number, length: number) => bytes.slice(offset, offset + length),
      close: async () => {
        closed++;
      },
    };
    await rejects(SafetensorsFile.open(source), /header is not valid JSON/);
    assert.equal(closed, 1);
  });

  it("rejects overlapping tensors", async () => {
    await rejects(
      openRaw(rawFile({ a: tensor("F32", [4], [0, 16]), b: tensor("F32", [4], [8, 24]) }, 24)),
      /tensor b overlaps the tensor before it/,
    );
  });

  it("requires the tensors to tile the data area exactly: a header length off by one fails", async () => {
    const header = `${JSON.stringify({ a: tensor("F32", [2], [0, 8]), b: tensor("F32", [1], [8, 12]) })}    `;
    const good = rawFile(header, 12);
    await (await openRaw(good)).close();
    const length = BigInt(new TextEncoder().encode(header).length);
    // One byte short still parses (the padding is spaces), and would read every tensor one byte early.
    await rejects(
      openRaw(rawFile(header, 12, length - 1n)),
      /the tensors end at byte \d+ of the file but it has \d+; the header length or offsets are wrong/,
    );
    await rejects(openRaw(rawFile({ a: tensor("F32", [2], [4, 12]) }, 12)), /4 bytes before tensor a belong to no tensor/);
    await rejects(
      openRaw(rawFile({ a: tensor("F32", [1], [0, 4]), b: tensor("F32", [1], [8, 12]) }, 12)),
      /4 bytes before tensor b belong to no tensor/,
    );
    await rejects(openRaw(rawFile({ a: tensor("F32", [2], [0, 8]) }, 12)), /the tensors end at byte \d+ of the file but it has \d+/);
  });

  it("rejects a byte size that does not match dtype × shape", async () => {
    await rejects(openRaw(rawFile({ w: tensor("F32", [3, 2], [0, 12]) }, 12)), /tensor w: holds 12 bytes but F32 × \[3, 2\] needs 24/);
    await rejects(openRaw(rawFile({ w: tensor("BF16", [4], [0, 16]) }, 16)), /holds 16 bytes but BF16 × \[4\] needs 8/);
  });

  it("rejects offsets past the data area (truncated data)", async () => {
    await rejects(openRaw(rawFile({ w: tensor("F32", [4], [0, 16]) }, 10)), /data_offsets \[0, 16\] run past the data area of 10 bytes/);
  });

  it("rejects unknown dtypes and malformed entries", async () => {
    await rejects(openRaw(rawFile({ w: tensor("F33", [1], [0, 4]) }, 4)), /tensor w: unknown dtype "F33"/);
    await rejects(openRaw(rawFile({ w: { dtype: "F32", shape: [-1], data_offsets: [0, 4] } }, 4)), /shape \[-1\] is not a list/);
    await rejects(openRaw(rawFile({ w: { dtype: "F32", shape: [1], data_offsets: [4, 0] } }, 4)), /end before they begin/);
  });
});

describe("checkpoint folders", () => {
  const fixture = readFileSync(`${FIXTURES}tiny_a/model.safetensors`);

  it("rejects a non-existent folder", async () => {
    await rejects(loadModel("/no/such/gemma-folder"), /\/no\/such\/gemma-folder: no such file or folder/);
  });

  it("rejects a folder without weights", async () => {
    const dir = tmp();
    writeFileSync(join(dir, "config.json"), "{}");
    await rejects(loadModel(dir), /no model.safetensors or model.safetensors.index.json/);
  });

  it("rejects a truncated checkpoint file", async () => {
    await rejects(loadModel(folderWith(fixture.subarray(0, fixture.length - 1000))), /run past the data area/);
    await rejects(loadModel(folderWith(fixture.subarray(0, 100))), /header length \d+ runs past the end/);
  });

  it("rejects a missing tensor, naming it and its expected shape", async () => {
    const dir = writeRandomModel(tinyGemma2Json(), 1, (ts) => ts.filter((t) => t.name !== "model.layers.2.mlp.up_proj.weight"));
    await rejects(loadModel(dir), /missing tensor model\.layers\.2\.mlp\.up_proj\.weight \(expected shape \[64, 32\]\)/);
  });

  it("rejects a tensor whose shape does not match the config, naming expected and found", async () => {
    const dir = writeRandomModel(tinyGemma2Json(), 1, (ts) =>
      ts.map((t) => (t.name === "model.layers.1.self_attn.k_proj.weight" ? { ...t, shape: [8, 64], data: t.data } : t)),
    );
    // k_proj is [nKvHeads·headDim, dModel] = [16, 32]; the file says [8, 64] (same element count).
    await rejects(loadModel(dir), /tensor model\.layers\.1\.self_attn\.k_proj\.weight has shape \[8, 64\], expected \[16, 32\]/);
  });

  it("rejects a malformed config.json and an unknown model_type", async () => {
    await rejects(loadModel(folderWith(fixture, '{ "model_type": ')), /config\.json: not valid JSON/);
    await rejects(loadModel(folderWith(fixture, JSON.stringify({ model_type: "mistral" }))), /unsupported model: model_type "mistral"/);
  });

  it("ignores harmless extra tensors; refuses weights the config does not use unless allowed", async () => {
    const dir = writeRandomModel(tinyGemma2Json(), 1, (ts) => [
      ...ts,
      { name: "lm_head.weight", dtype: "f32", shape: [2], data: new Float32Array(2) } as NamedTensor,
    ]);
    const messages: string[] = [];
    const model = await loadModel(dir, { onDebug: (m) => messages.push(m) });
    assert.equal(model.config.nLayers, 4);
    assert.ok(messages.includes("ignoring tensor lm_head.weight: not part of a gemma2 model"), messages.join("\n"));

    // Gemma 2 weights under Gemma 1's model_type: the sandwich norms would be dropped silently.
    const gemma2 = writeRandomModel(tinyGemma2Json(), 1);
    const config = JSON.parse(readFileSync(join(gemma2, "config.json"), "utf8")) as Record<string, unknown>;
    writeFileSync(join(gemma2, "config.json"), JSON.stringify({ ...config, model_type: "gemma" }));
    await rejects(
      loadModel(gemma2),
      /tensor\(s\) are not used by a gemma model with this config \(model\.layers\.0\.pre_feedforward_layernorm\.weight, .*--allow-unused-tensors/,
    );
    // A config that claims fewer layers than the weights hold, or far more.
    writeFileSync(join(gemma2, "config.json"), JSON.stringify({ ...config, num_hidden_layers: 2 }));
    await rejects(loadModel(gemma2), /the config says 2 layers but the weights hold 4/);
    const loaded = await loadModel(gemma2, { allowUnusedTensors: true });
    assert.equal(loaded.config.nLayers, 2, "allowUnusedTensors loads the layers the config names");
    writeFileSync(join(gemma2, "config.json"), JSON.stringify({ ...config, num_hidden_layers: 1000 }));
    const t0 = performance.now();
    await rejects(loadModel(gemma2), /the config says 1000 layers but the weights hold 4/);
    assert.ok(performance.now() - t0 < 1000);
  });

  it("loads a sharded folder (model.safetensors.index.json) with the same logits as the single file", async () => {
    const single = await openCheckpointFolder(`${FIXTURES}tiny_a`);
    const file = single.files[0]!;
    const names = [...file.tensors.keys()];
    const tensors: NamedTensor[] = [];
    for (const name of names) tensors.push({ name, ...(await file.readTensor(name)) });
    await single.close();
    const dir = tmp();
    copyFileSync(`${FIXTURES}tiny_a/config.json`, join(dir, "config.json"));
    const half = Math.floor(tensors.length / 2);
    const shards = [tensors.slice(0, half), tensors.slice(half)];
    const weightMap: Record<string, string> = {};
    shards.forEach((shard, i) => {
      const fileName = `model-0000${i + 1}-of-00002.safetensors`;
      writeFileSync(join(dir, fileName), encodeSafetensors(shard));
      for (const t of shard) weightMap[t.name] = fileName;
    });
    writeFileSync(join(dir, "model.safetensors.index.json"), JSON.stringify({ metadata: {}, weight_map: weightMap }));

    const ids = [2, 10, 20, 30];
    const sharded = await (await loadModel(dir)).logits(ids);
    const reference = await (await loadModel(`${FIXTURES}tiny_a`)).logits(ids);
    assert.deepEqual(sharded, reference);
  });

  it("rejects an index naming a missing shard or a path outside the folder", async () => {
    const dir = tmp();
    copyFileSync(`${FIXTURES}tiny_a/config.json`, join(dir, "config.json"));
    writeFileSync(
      join(dir, "model.safetensors.index.json"),
      JSON.stringify({ weight_map: { "model.norm.weight": "model-00001-of-00002.safetensors" } }),
    );
    await rejects(loadModel(dir), /model-00001-of-00002\.safetensors: cannot open \(ENOENT\); listed in model\.safetensors\.index\.json/);
    writeFileSync(join(dir, "model.safetensors.index.json"), JSON.stringify({ weight_map: { "model.norm.weight": "../../etc/passwd" } }));
    await rejects(loadModel(dir), /must be a file name in the same folder/);
    writeFileSync(join(dir, "model.safetensors.index.json"), "{");
    await rejects(loadModel(dir), /model\.safetensors\.index\.json: not valid JSON/);
  });
});

describe("checkpoint contents that cannot be used", () => {
  it("rejects a needed tensor stored in an unsupported dtype", async () => {
    const dir = writeRandomModel(tinyGemma2Json(), 1, (ts) =>
      ts.map((t) => (t.name === "model.norm.weight" ? { ...t, dtype: "f16", data: new Uint16Array(t.data.length) } : t)),
    );
    // Rewrite the header's dtype to I16 (same byte size as F16) to simulate an integer tensor.
    const path = join(dir, "model.safetensors");
    const bytes = readFileSync(path);
    const text = bytes.toString("latin1").replace('"model.norm.weight":{"dtype":"F16"', '"model.norm.weight":{"dtype":"I16"');
    writeFileSync(path, Buffer.from(text, "latin1"));
    await rejects(loadModel(dir), /tensor model\.norm\.weight has dtype I16; gemma-ts reads F32, F16 and BF16/);
  });

  it("rejects a tokenizer larger than the model's vocabulary", async () => {
    const { addGemmaTokenizer } = await import("../helpers/tokenizer.js");
    const dir = writeRandomModel(tinyGemma2Json(), 1);
    addGemmaTokenizer(dir);
    await assert.rejects(loadModel(dir), /the tokenizer has 256000 tokens but config\.json's vocab_size is 96/);
  });
});
