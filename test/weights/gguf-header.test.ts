import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { gguf } from "@huggingface/gguf";
import { BlobSource } from "../../src/browser/blob-source.js";
import type { ByteSource } from "../../src/weights/byte-source.js";
import { GgufFile } from "../../src/weights/gguf.js";
import { GGUF_TYPE, GgufHeaderError, GgufHeaderTruncated, parseGgufHeader } from "../../src/weights/gguf-header.js";
import { encodeGguf } from "../../src/weights/gguf-writer.js";
import { gguv, type GgufValue } from "../../src/weights/gguf-values.js";
import { StringTable } from "../../src/weights/string-table.js";

const typed = (type: number, value: GgufValue["value"], subType?: number): GgufValue =>
  subType === undefined ? { type, value } : { type, value, subType };

/** Every value type GGUF has, and the vocabulary-shaped arrays a Gemma file carries. */
const METADATA: Record<string, GgufValue> = {
  "general.architecture": gguv.str("gemma2"),
  "t.u8": typed(GGUF_TYPE.UINT8, 200),
  "t.i8": typed(GGUF_TYPE.INT8, -100),
  "t.u16": typed(GGUF_TYPE.UINT16, 60000),
  "t.i16": typed(GGUF_TYPE.INT16, -30000),
  "t.u32": gguv.u32(4_000_000_000),
  "t.i32": gguv.i32(-2_000_000_000),
  "t.f32": gguv.f32(0.1),
  "t.bool": gguv.bool(true),
  "t.u64": typed(GGUF_TYPE.UINT64, 2n ** 63n + 5n),
  "t.i64": typed(GGUF_TYPE.INT64, -(2n ** 62n)),
  "t.f64": typed(GGUF_TYPE.FLOAT64, Math.PI),
  "t.empty": gguv.strings([]),
  "tokenizer.ggml.tokens": gguv.strings(["<pad>", "▁the", "日本", "😀", "", "a\u0000b"]),
  "tokenizer.ggml.scores": gguv.f32s([0, -1.5, -2.25, 3, 4, 5]),
  "tokenizer.ggml.token_type": gguv.i32s([3, 1, 1, 1, 1, 6]),
  "t.bools": gguv.bools([true, false, true]),
};

const TENSORS = [
  { name: "a", type: "F32" as const, shape: [3, 2], data: new Float32Array(6) },
  { name: "b.weight", type: "Q8_0" as const, shape: [1, 64], data: new Uint8Array(68) },
];

/** A little-endian u64's bytes. */
const u64 = (n: number) => [...new Uint8Array(new BigUint64Array([BigInt(n)]).buffer)];

/** String arrays as plain arrays, to compare. */
const plain = (value: unknown) => (value instanceof StringTable ? value.toArray() : value);

/** A file `bytes` long served to @huggingface/gguf through `fetch`, as GgufFile once did. */
async function referenceParse(bytes: Uint8Array) {
  const fetchRange = (async (_url: unknown, init?: RequestInit) => {
    const [, from, to] = /bytes=(\d+)-(\d+)/.exec(new Headers(init?.headers).get("range") ?? "")!.map(Number);
    const body = bytes.slice(Math.min(from!, bytes.length), Math.min(to! + 1, bytes.length));
    return new Response(body, { status: 206, headers: { "content-range": `bytes ${from}-${to}/${bytes.length}` } });
  }) as typeof fetch;
  return gguf("https://example.invalid/x.gguf", { fetch: fetchRange });
}

describe("GGUF header parser", () => {
  it("reads every value type as @huggingface/gguf does, and the tensor infos", async () => {
    const bytes = encodeGguf(METADATA, TENSORS);
    const header = parseGgufHeader(bytes, bytes.length);
    const reference = await referenceParse(bytes);
    assert.equal(header.version, 3);
    for (const key of Object.keys(METADATA))
      assert.deepEqual(plain(header.metadata.get(key)), (reference.metadata as Record<string, unknown>)[key], key);
    assert.equal(header.metadata.size, Object.keys(METADATA).length);
    assert.deepEqual(
      header.tensors,
      reference.tensorInfos.map((t) => ({ name: t.name, dims: t.shape.map(Number), type: t.dtype, offset: Number(t.offset) })),
    );
    assert.equal(header.end, reference.tensorInfoByteRange[1]);
  });

  it("keeps a leading byte-order mark (Gemma's piece \\uFEFF# is not #)", () => {
    const bytes = encodeGguf({ "tokenizer.ggml.tokens": gguv.strings(["#", "\uFEFF#"]) }, []);
    assert.deepEqual(plain(parseGgufHeader(bytes, bytes.length).metadata.get("tokenizer.ggml.tokens")), ["#", "\uFEFF#"]);
  });

  it("decodes string arrays as TextDecoder does, invalid UTF-8 included", () => {
    const utf8 = (text: string) => [...new TextEncoder().encode(text)];
    const samples: number[][] = [
      utf8("plain"),
      utf8("▁日本語 😀 \uFEFFbom"),
      [],
      [0xff],
      [0x61, 0xc3],
      [0xc0, 0x80],
      [0xe0, 0x80, 0x80],
      [0xed, 0xa0, 0x80],
      [0xf4, 0x90, 0x80, 0x80],
      [0xf0, 0x9f, 0x98],
      [0x80, 0x61, 0xe2, 0x96, 0x81],
    ];
    let seed = 7;
    const randomByte = () => {
      seed = (seed * 1103515245 + 12345) >>> 0;
      return (seed >>> 16) & 0xff;
    };
    for (let n = 0; n < 200; n++) samples.push(Array.from({ length: n % 9 }, randomByte));
    const body = samples.flatMap((b) => [...u64(b.length), ...b]);
    const bytes = new Uint8Array([
      ...utf8("GGUF"),
      ...[3, 0, 0, 0],
      ...u64(0),
      ...u64(1),
      ...u64(1),
      ...utf8("k"),
      ...[9, 0, 0, 0, 8, 0, 0, 0],
      ...u64(samples.length),
      ...body,
    ]);
    const table = parseGgufHeader(bytes, bytes.length).metadata.get("k");
    assert.ok(table instanceof StringTable);
    const decoder = new TextDecoder("utf-8", { ignoreBOM: true });
    for (const [i, b] of samples.entries()) assert.equal(table.at(i), decoder.decode(new Uint8Array(b)), `sample ${i}: [${b.join(", ")}]`);
  });

  it("asks for more bytes when the header goes on past the ones given", () => {
    const bytes = encodeGguf(METADATA, TENSORS);
    const end = parseGgufHeader(bytes, bytes.length).end;
    for (const given of [10, 24, 100, end - 1]) {
      assert.throws(
        () => parseGgufHeader(bytes.subarray(0, given), bytes.length),
        (e: Error) => e instanceof GgufHeaderTruncated && e.bytes > given && e.bytes <= end,
      );
    }
  });

  it("GgufFile reads a header longer than its first 8 MiB read again, whole", async () => {
    const pieces = Array.from({ length: 300_000 }, (_, i) => `▁piece-number-${i}`);
    const bytes = encodeGguf({ "general.architecture": gguv.str("gemma2"), "tokenizer.ggml.tokens": gguv.strings(pieces) }, TENSORS);
    const blob = new BlobSource(new Blob([bytes.slice().buffer]), "big-header.gguf");
    const reads: number[] = [];
    const source: ByteSource = {
      name: blob.name,
      size: blob.size,
      read: (offset, length, into) => {
        if (offset === 0) reads.push(length);
        return blob.read(offset, length, into);
      },
      close: () => blob.close(),
    };
    const file = await GgufFile.open(source);
    assert.ok(parseGgufHeader(bytes, bytes.length).end > 8 * 1024 * 1024);
    assert.deepEqual(reads, [4, 8 * 1024 * 1024, Math.min(bytes.length, 16 * 1024 * 1024)]);
    assert.deepEqual(plain(file.metadata["tokenizer.ggml.tokens"]), pieces);
    assert.deepEqual([...file.tensors.keys()].sort(), ["a", "b.weight"]);
  });

  it("any corrupted byte gives a header or a clear error, never another exception or a hang", () => {
    const bytes = encodeGguf(METADATA, TENSORS);
    const end = parseGgufHeader(bytes, bytes.length).end;
    let seed = 11;
    const next = () => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed >>> 8;
    };
    for (let trial = 0; trial < 3000; trial++) {
      const bad = bytes.slice();
      for (let flips = 1 + (next() % 3); flips > 0; flips--) bad[4 + (next() % (end - 4))] = next() & 0xff;
      try {
        parseGgufHeader(bad, bad.length);
      } catch (e) {
        assert.ok(e instanceof GgufHeaderError, `trial ${trial}: ${(e as Error).name}: ${(e as Error).message}`);
      }
    }
  });

  describe("rejects a corrupt header, naming what is wrong", () => {
    const bytes = () => encodeGguf(METADATA, TENSORS);
    const view = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, b.byteLength);
    const fails = (b: Uint8Array, pattern: RegExp, fileSize = b.length) =>
      assert.throws(
        () => parseGgufHeader(b, fileSize),
        (e: Error) => e instanceof GgufHeaderError && pattern.test(e.message),
      );
    /** Offset of the value type field after `key`. */
    const typeAfter = (b: Uint8Array, key: string) => Buffer.from(b).indexOf(Buffer.from(key)) + key.length;

    it("a header cut short in the file", () => {
      const b = bytes();
      const end = parseGgufHeader(b, b.length).end;
      fails(b.subarray(0, end - 3), /ends early.*truncated/);
    });

    it("versions 1 and 4, and a big-endian file", () => {
      for (const [version, pattern] of [
        [1, /version 1 .*not supported/],
        [4, /unknown GGUF version 4/],
      ] as const) {
        const b = bytes();
        view(b).setUint32(4, version, true);
        fails(b, pattern);
      }
      const big = bytes();
      view(big).setUint32(4, 3, false);
      fails(big, /big-endian/);
    });

    it("counts and lengths that cannot fit in the file (checked before anything is allocated)", () => {
      const tensors = bytes();
      view(tensors).setBigUint64(8, 2n ** 40n, true);
      fails(tensors, /tensor count 1099511627776 .*does not fit/);
      const kvs = bytes();
      view(kvs).setBigUint64(16, 2n ** 53n + 1n, true);
      fails(kvs, /metadata count .* is too large/);
      const array = bytes();
      view(array).setBigUint64(typeAfter(array, "tokenizer.ggml.scores") + 8, 10n ** 12n, true);
      fails(array, /tokenizer\.ggml\.scores's length 1000000000000 .*does not fit/);
      const string = bytes();
      view(string).setBigUint64(typeAfter(string, "general.architecture") + 4, 10n ** 9n, true);
      fails(string, /string length 1000000000 .*does not fit/);
    });

    it("an unknown value type, and arrays nested too deep", () => {
      const b = bytes();
      view(b).setUint32(typeAfter(b, "t.f32"), 13, true);
      fails(b, /t\.f32 has unknown value type 13/);
      const element = bytes();
      view(element).setUint32(typeAfter(element, "t.bools") + 4, 77, true);
      fails(element, /t\.bools is an array of unknown value type 77/);
      // Arrays of arrays of ... of one empty array, five deep.
      const nested = new Uint8Array(24 + 8 + 1 + 4 + 5 * 12);
      nested.set([0x47, 0x47, 0x55, 0x46]);
      const v = view(nested);
      v.setUint32(4, 3, true);
      v.setBigUint64(16, 1n, true);
      v.setBigUint64(24, 1n, true);
      nested[32] = 0x6e;
      v.setUint32(33, 9, true);
      for (let d = 0, at = 37; d < 5; d++, at += 12) {
        v.setUint32(at, 9, true);
        v.setBigUint64(at + 4, d < 4 ? 1n : 0n, true);
      }
      fails(nested, /metadata n nests arrays deeper than 4/);
    });

    it("a key given twice, and a tensor with no or too many dimensions", () => {
      const twice = bytes();
      const key = Buffer.from("t.u16");
      twice.set(Buffer.from("t.i16"), Buffer.from(twice).indexOf(key));
      fails(twice, /metadata key "t\.i16" appears twice/);
      for (const dims of [0, 5]) {
        const b = bytes();
        view(b).setUint32(Buffer.from(b).lastIndexOf(Buffer.from("b.weight")) + 8, dims, true);
        fails(b, new RegExp(`tensor b\\.weight has ${dims} dimensions; GGUF allows 1 to 4`));
      }
    });
  });
});
