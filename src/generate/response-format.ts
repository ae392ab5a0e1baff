/**
 * Structured output: what a reply must look like (`responseFormat`), checked when a generation is
 * asked for, so an unsupported JSON Schema is an error naming the keyword instead of a reply that
 * quietly ignores it. The decoding itself is grammar.ts.
 */
import { GenerationError } from "../errors.js";

/** A JSON Schema as JSON (the subset in SUPPORTED_KEYWORDS). */
export type JsonSchema = { [key: string]: unknown } | boolean;

export type ResponseFormat =
  | { type: "text" }
  /** Any JSON object. */
  | { type: "json_object" }
  /** JSON valid against `schema`. */
  | { type: "json_schema"; schema: JsonSchema }
  /** Text of an EBNF grammar (XGrammar's GBNF dialect, root rule `root`). */
  | { type: "grammar"; grammar: string }
  /**
   * Free text, in which `begin` opens JSON valid against `schema` that `end` closes; the reply ends
   * there (what tool calls are decoded under).
   */
  | { type: "text_or_json"; begin: string; schema: JsonSchema; end: string };

/** Keywords whose meaning constrained decoding guarantees. */
const CONSTRAINING = new Set([
  "type",
  "properties",
  "required",
  "additionalProperties",
  "items",
  "enum",
  "const",
  "anyOf",
  "$ref",
  "$defs",
  "definitions",
  "minItems",
  "maxItems",
  "minLength",
  "maxLength",
  "minimum",
  "maximum",
  "exclusiveMinimum",
  "exclusiveMaximum",
]);

/** Annotations: allowed, they constrain nothing. */
const ANNOTATIONS = new Set([
  "title",
  "description",
  "default",
  "examples",
  "$schema",
  "$id",
  "$comment",
  "deprecated",
  "readOnly",
  "writeOnly",
]);

const TYPES = new Set(["object", "array", "string", "number", "integer", "boolean", "null"]);

/** Sub-schema positions: keyword → how its value holds schemas. */
const SUBSCHEMAS: Readonly<Record<string, "map" | "one" | "list">> = {
  properties: "map",
  $defs: "map",
  definitions: "map",
  items: "one",
  additionalProperties: "one",
  anyOf: "list",
};

const invalid = (message: string) => new GenerationError(`responseFormat: ${message}`);

/** Checks a response format; throws a GenerationError naming the problem (and the path of a bad schema part). */
export function checkResponseFormat(format: unknown): ResponseFormat {
  if (typeof format !== "object" || format === null || Array.isArray(format)) throw invalid("must be an object with a type");
  const f = format as Record<string, unknown>;
  switch (f["type"]) {
    case "text":
    case "json_object":
      return { type: f["type"] };
    case "json_schema": {
      const raw = f["schema"];
      if (typeof raw !== "boolean" && (typeof raw !== "object" || raw === null || Array.isArray(raw)))
        throw invalid("json_schema needs a schema (a JSON Schema object)");
      const schema = raw as JsonSchema;
      checkSchema(schema, "schema", schema);
      return { type: "json_schema", schema };
    }
    case "grammar": {
      const grammar = f["grammar"];
      if (typeof grammar !== "string" || grammar.trim() === "") throw invalid("grammar needs the text of an EBNF grammar");
      return { type: "grammar", grammar };
    }
    case "text_or_json": {
      const { begin, end } = f;
      if (typeof begin !== "string" || begin === "" || typeof end !== "string")
        throw invalid("text_or_json needs a non-empty begin string, an end string and a schema");
      const schema = f["schema"] as JsonSchema;
      checkSchema(schema, "schema", schema);
      return { type: "text_or_json", begin, schema, end };
    }
  }
  throw invalid(`type ${JSON.stringify(f["type"])} is not one of "text", "json_object", "json_schema", "grammar", "text_or_json"`);
}

function checkSchema(schema: unknown, path: string, root: JsonSchema): void {
  if (typeof schema === "boolean") return;
  if (typeof schema !== "object" || schema === null || Array.isArray(schema)) throw invalid(`${path} must be a schema object`);
  const s = schema as Record<string, unknown>;
  const unsupported = Object.keys(s).filter((k) => !CONSTRAINING.has(k) && !ANNOTATIONS.has(k));
  if (unsupported.length > 0)
    throw invalid(
      `${path} uses ${unsupported.map((k) => `"${k}"`).join(", ")}, which constrained decoding cannot guarantee; supported: ` +
        [...CONSTRAINING].join(", "),
    );
  const types = s["type"] === undefined ? [] : Array.isArray(s["type"]) ? s["type"] : [s["type"]];
  for (const t of types) if (typeof t !== "string" || !TYPES.has(t)) throw invalid(`${path}.type ${JSON.stringify(t)} is not a JSON type`);
  // XGrammar's number ranges are exact for integers only.
  const bounded = ["minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"].filter((k) => s[k] !== undefined);
  for (const k of bounded) {
    if (!Number.isInteger(s[k])) throw invalid(`${path}.${k} must be an integer`);
    if (!(types.length === 1 && types[0] === "integer")) throw invalid(`${path}.${k} is supported on "type": "integer" only`);
  }
  for (const k of ["minItems", "maxItems", "minLength", "maxLength"]) {
    if (s[k] !== undefined && (!Number.isInteger(s[k]) || (s[k] as number) < 0))
      throw invalid(`${path}.${k} must be a non-negative integer`);
  }
  if (s["enum"] !== undefined && (!Array.isArray(s["enum"]) || s["enum"].length === 0))
    throw invalid(`${path}.enum must be a non-empty list`);
  if (s["required"] !== undefined && (!Array.isArray(s["required"]) || !s["required"].every((r) => typeof r === "string")))
    throw invalid(`${path}.required must be a list of property names`);
  if (s["$ref"] !== undefined) checkRef(s["$ref"], `${path}.$ref`, root);
  for (const [keyword, shape] of Object.entries(SUBSCHEMAS)) {
    const value = s[keyword];
    if (value === undefined) continue;
    if (shape === "one") checkSchema(value, `${path}.${keyword}`, root);
    else if (shape === "list") {
      if (!Array.isArray(value) || value.length === 0) throw invalid(`${path}.${keyword} must be a non-empty list of schemas`);
      for (const [i, v] of value.entries()) checkSchema(v, `${path}.${keyword}[${i}]`, root);
    } else {
      if (typeof value !== "object" || value === null || Array.isArray(value))
        throw invalid(`${path}.${keyword} must map names to schemas`);
      for (const [name, v] of Object.entries(value)) checkSchema(v, `${path}.${keyword}.${name}`, root);
    }
  }
}

/** Only references inside the schema itself: "#", "#/$defs/x", "#/definitions/x". */
function checkRef(ref: unknown, path: string, root: JsonSchema): void {
  if (typeof ref !== "string" || !ref.startsWith("#")) throw invalid(`${path} must point inside the schema ("#/$defs/...")`);
  let at: unknown = root;
  for (const part of ref.slice(1).split("/").filter(Boolean)) {
    const key = part.replace(/~1/g, "/").replace(/~0/g, "~");
    at = typeof at === "object" && at !== null ? (at as Record<string, unknown>)[key] : undefined;
    if (at === undefined) throw invalid(`${path} ${JSON.stringify(ref)} points to nothing in the schema`);
  }
}
