/**
 * Reading a Hugging Face config.json, shared by every family's config reader: typed fields with
 * errors that name the file and the field, and bounds on sizes.
 */
import { ConfigError } from "../errors.js";

export type Json = Record<string, unknown>;

/** The top-level object of a config.json text. */
export function parseJsonObject(text: string, source: string): Json {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new ConfigError(`${source}: not valid JSON (${(e as Error).message})`);
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw new ConfigError(`${source}: expected a JSON object at the top level`);
  }
  return json as Json;
}

/**
 * Upper bounds far beyond any published Gemma (27B: 46 layers, 8k-128k context, 256k vocabulary):
 * a corrupt or hostile config must fail here, not allocate gigabytes. Other sizes: 2^24.
 */
export const SIZE_LIMITS: Readonly<Record<string, number>> = {
  num_hidden_layers: 1024,
  num_attention_heads: 1024,
  num_key_value_heads: 1024,
  max_position_embeddings: 1 << 21,
  vocab_size: 1 << 22,
  sliding_window: 1 << 21,
  sliding_window_size: 1 << 21,
};

/** Reads typed fields from a JSON object, naming the field and file when one is missing or wrong. */
export class FieldReader {
  constructor(
    private readonly json: Json,
    private readonly source: string,
  ) {}

  private fail(field: string, expected: string): never {
    const value = this.json[field];
    const found = value === undefined ? "it is missing" : `found ${JSON.stringify(value)}`;
    throw new ConfigError(`${this.source}: ${field} must be ${expected}; ${found}`, field);
  }

  /** A positive integer up to `max`: sizes beyond any real model are refused before anything is allocated for them. */
  positiveInt(field: string, max = SIZE_LIMITS[field] ?? 1 << 24): number {
    const v = this.json[field];
    if (!Number.isInteger(v) || (v as number) <= 0 || (v as number) > max)
      this.fail(field, `a positive integer up to ${max.toLocaleString("en")}`);
    return v as number;
  }

  optionalPositiveInt(field: string): number | undefined {
    return this.json[field] === undefined || this.json[field] === null ? undefined : this.positiveInt(field);
  }

  /** A count that may be 0 (num_kv_shared_layers); absent or null is undefined. */
  optionalNonNegativeInt(field: string, max = 1 << 24): number | undefined {
    const v = this.json[field];
    if (v === undefined || v === null) return undefined;
    if (!Number.isInteger(v) || (v as number) < 0 || (v as number) > max)
      this.fail(field, `an integer from 0 to ${max.toLocaleString("en")}`);
    return v as number;
  }

  positiveNumber(field: string): number {
    const v = this.json[field];
    if (typeof v !== "number" || !(v > 0) || !Number.isFinite(v)) this.fail(field, "a positive number");
    return v as number;
  }

  optionalPositiveNumber(field: string): number | undefined {
    return this.json[field] === undefined || this.json[field] === null ? undefined : this.positiveNumber(field);
  }

  optionalTokenId(field: string): number | undefined {
    const v = this.json[field];
    if (v === undefined || v === null) return undefined;
    if (!Number.isInteger(v) || (v as number) < 0) this.fail(field, "a token id (a non-negative integer)");
    return v as number;
  }

  /** The field or, when it is absent or null, `fallback` (which is checked like a value). */
  positiveIntOr(field: string, fallback: number): number {
    const value = this.optionalPositiveInt(field);
    if (value !== undefined) return value;
    if (!Number.isInteger(fallback) || fallback <= 0) this.fail(field, "a positive integer");
    return fallback;
  }

  positiveNumberOr(field: string, fallback: number): number {
    return this.optionalPositiveNumber(field) ?? fallback;
  }

  tokenIdOr(field: string, fallback: number): number {
    return this.optionalTokenId(field) ?? fallback;
  }

  /** A list of token ids, or one id as a list (eos_token_id); `fallback` when absent. */
  tokenIds(field: string, fallback: number[]): number[] {
    const raw = this.json[field];
    if (raw === undefined || raw === null) return fallback;
    const list = Array.isArray(raw) ? raw : [raw];
    if (list.length === 0 || !list.every((x) => Number.isInteger(x) && (x as number) >= 0))
      this.fail(field, "a token id or a list of token ids");
    return list as number[];
  }

  /** Throws the standard error for `field`. */
  reject(field: string, expected: string): never {
    return this.fail(field, expected);
  }

  /** null disables the cap (as in HF); absent means the family's default. */
  softcap(field: string, fallback: number | null): number | null {
    if (!(field in this.json)) return fallback;
    if (this.json[field] === null) return null;
    return this.positiveNumber(field);
  }
}
