/**
 * Teacher targets for distillation, computed once and stored compactly (format in
 * docs/distillation.md): `meta.json` describes the run (data hash, sequence length, top-k,
 * vocabulary size); `targets.bin` holds one record per training sequence, in order: the top-k
 * token ids (int32) of every position, then their probabilities (float32), seqLen·k·8 bytes.
 * A run that stops part-way resumes at the first incomplete record.
 */
import { closeSync, openSync, readSync } from "node:fs";
import { mkdir, open, readFile, stat, truncate, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { GemmaError } from "../errors.js";
import type { GemmaModel } from "../gemma-model.js";
import type { TeacherTopK } from "./losses.js";
import type { TextDataset } from "./data.js";

export const TARGETS_FORMAT = "gemma-ts-teacher-targets";

export interface TargetsMeta {
  format: typeof TARGETS_FORMAT;
  version: 1;
  topK: number;
  seqLen: number;
  vocabSize: number;
  sequences: number;
  dataSha256: string;
  /** sha256 of the tokenized training windows (same text, same tokenizer). */
  tokensSha256: string;
  teacher: string;
}

export class TargetsError extends GemmaError {
  override name = "TargetsError";
}

const recordBytes = (m: Pick<TargetsMeta, "seqLen" | "topK">) => m.seqLen * m.topK * 8;

/** The k largest probabilities of a softmax over one row of logits, ids and probabilities. */
export function topKProbabilities(
  logits: Float32Array,
  offset: number,
  vocab: number,
  k: number,
  ids: Int32Array,
  probs: Float32Array,
  at: number,
): void {
  let max = -Infinity;
  for (let i = 0; i < vocab; i++) max = Math.max(max, logits[offset + i]!);
  let sum = 0;
  for (let i = 0; i < vocab; i++) sum += Math.exp(logits[offset + i]! - max);
  // Min-heap of the k best (value, id) seen so far, root = the smallest kept.
  const heapIds = new Int32Array(k).fill(-1);
  const heapVals = new Float64Array(k).fill(-Infinity);
  for (let i = 0; i < vocab; i++) {
    const value = logits[offset + i]!;
    if (value <= heapVals[0]!) continue;
    heapVals[0] = value;
    heapIds[0] = i;
    for (let j = 0; ; ) {
      const l = 2 * j + 1;
      const r = l + 1;
      let m = j;
      if (l < k && heapVals[l]! < heapVals[m]!) m = l;
      if (r < k && heapVals[r]! < heapVals[m]!) m = r;
      if (m === j) break;
      [heapVals[j], heapVals[m]] = [heapVals[m]!, heapVals[j]!];
      [heapIds[j], heapIds[m]] = [heapIds[m]!, heapIds[j]!];
      j = m;
    }
  }
  const order = Array.from({ length: k }, (_, j) => j).sort((a, b) => heapVals[b]! - heapVals[a]!);
  order.forEach((j, n) => {
    ids[at + n] = heapIds[j]!;
    probs[at + n] = Math.exp(heapVals[j]! - max) / sum;
  });
}

/** Runs the teacher over every training sequence not yet in `dir`; returns the meta. */
export async function writeTeacherTargets(
  teacher: GemmaModel,
  teacherName: string,
  data: TextDataset,
  options: { dir: string; topK: number; seqLen: number; onProgress?: (done: number, total: number) => void },
): Promise<TargetsMeta> {
  const { dir, topK, seqLen } = options;
  const vocab = teacher.config.vocabSize;
  if (!Number.isInteger(topK) || topK < 1 || topK > vocab)
    throw new TargetsError(`--top-k must be between 1 and the vocabulary size ${vocab}, got ${topK}`);
  const meta: TargetsMeta = {
    format: TARGETS_FORMAT,
    version: 1,
    topK,
    seqLen,
    vocabSize: vocab,
    sequences: data.train.length,
    dataSha256: data.sha256,
    tokensSha256: data.tokensSha256,
    teacher: teacherName,
  };
  await mkdir(dir, { recursive: true });
  const metaPath = join(dir, "meta.json");
  const binPath = join(dir, "targets.bin");
  const existing = await readMeta(dir).catch(() => null);
  if (existing) {
    for (const key of ["topK", "seqLen", "vocabSize", "sequences", "dataSha256", "tokensSha256"] as const) {
      if (existing[key] !== meta[key]) {
        const differs = `${key} ${existing[key]} ≠ ${meta[key]}`;
        throw new TargetsError(`${dir} holds targets for a different run (${differs}); use a new --out folder`);
      }
    }
  } else {
    await writeFile(metaPath, `${JSON.stringify(meta, null, 2)}\n`);
    await writeFile(binPath, new Uint8Array(0));
  }
  const bytes = recordBytes(meta);
  const size = (await stat(binPath).catch(() => null))?.size ?? 0;
  const done = Math.min(meta.sequences, Math.floor(size / bytes));
  if (size !== done * bytes) await truncate(binPath, done * bytes);
  const file = await open(binPath, "a");
  try {
    options.onProgress?.(done, meta.sequences);
    for (let s = done; s < meta.sequences; s++) {
      const input = Array.from(data.train[s]!.subarray(0, seqLen));
      const logits = await teacher.logits(input);
      const ids = new Int32Array(seqLen * topK);
      const probs = new Float32Array(seqLen * topK);
      for (let t = 0; t < seqLen; t++) topKProbabilities(logits, t * vocab, vocab, topK, ids, probs, t * topK);
      await file.write(new Uint8Array(ids.buffer));
      await file.write(new Uint8Array(probs.buffer));
      options.onProgress?.(s + 1, meta.sequences);
    }
  } finally {
    await file.close();
  }
  return meta;
}

async function readMeta(dir: string): Promise<TargetsMeta> {
  const meta = JSON.parse(await readFile(join(dir, "meta.json"), "utf8")) as TargetsMeta;
  if (meta.format !== TARGETS_FORMAT || meta.version !== 1) throw new TargetsError(`${dir}/meta.json: not a ${TARGETS_FORMAT} v1 folder`);
  return meta;
}

/** Stored teacher targets, checked against the student's data and vocabulary; read per sequence from disk. */
export class TeacherTargets {
  private constructor(
    readonly meta: TargetsMeta,
    private readonly fd: number,
  ) {}

  static async open(dir: string, expect: { vocabSize: number; seqLen: number; data: TextDataset }): Promise<TeacherTargets> {
    const meta = await readMeta(dir).catch((e: Error) => {
      throw e instanceof TargetsError ? e : new TargetsError(`${dir}: no teacher targets here (${e.message})`);
    });
    if (meta.vocabSize !== expect.vocabSize) {
      throw new TargetsError(
        `${dir}: the targets were made by a teacher with a vocabulary of ${meta.vocabSize} tokens, but the student has ${expect.vocabSize}`,
      );
    }
    if (meta.seqLen !== expect.seqLen) throw new TargetsError(`${dir}: the targets are for --seq-len ${meta.seqLen}, not ${expect.seqLen}`);
    if (meta.dataSha256 !== expect.data.sha256 || meta.sequences !== expect.data.train.length) {
      throw new TargetsError(
        `${dir}: the targets were made from different data (sha256 ${meta.dataSha256.slice(0, 12)}…, ${meta.sequences} sequences)`,
      );
    }
    if (meta.tokensSha256 !== expect.data.tokensSha256) {
      throw new TargetsError(`${dir}: the targets were made with a different tokenizer (the same text tokenizes to other ids)`);
    }
    const size = (await stat(join(dir, "targets.bin")).catch(() => null))?.size ?? 0;
    if (size < meta.sequences * recordBytes(meta)) {
      const done = Math.floor(size / recordBytes(meta));
      throw new TargetsError(`${dir}: only ${done} of ${meta.sequences} sequences have targets; finish the teacher-targets run first`);
    }
    return new TeacherTargets(meta, openSync(join(dir, "targets.bin"), "r"));
  }

  /** Targets of training sequence `index`. */
  sequence(index: number): TeacherTopK {
    const n = this.meta.seqLen * this.meta.topK;
    const record = new Uint8Array(n * 8);
    readSync(this.fd, record, 0, record.length, index * record.length);
    return { k: this.meta.topK, ids: new Int32Array(record.buffer, 0, n), probs: new Float32Array(record.buffer, n * 4, n) };
  }

  close(): void {
    closeSync(this.fd);
  }
}
