import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Ajv } from "ajv";
import OpenAI from "openai";
import { zodResponseFormat } from "openai/helpers/zod";
import { z } from "zod";
import { GenerationError } from "../../src/errors.js";
import { loadModel, type GemmaModel } from "../../src/gemma.js";
import { startServer, type RunningServer } from "../../src/server/serve.js";

/** Schemas whose replies must end: strings have a maxLength, numbers a range, arrays a maxItems. */
const SCHEMAS: Record<string, Record<string, unknown>> = {
  "nested objects with optional fields": {
    type: "object",
    properties: {
      name: { type: "string", maxLength: 16 },
      age: { type: "integer", minimum: 0, maximum: 150 },
      address: {
        type: "object",
        properties: { city: { type: "string", maxLength: 12 }, zip: { type: "integer", minimum: 0, maximum: 99999 } },
        required: ["city"],
      },
      alive: { type: "boolean" },
    },
    required: ["name", "address"],
  },
  "an array of enums and a const": {
    type: "object",
    properties: {
      colors: { type: "array", items: { enum: ["red", "green", "blue"] }, minItems: 1, maxItems: 4 },
      kind: { const: "palette" },
      note: { anyOf: [{ type: "null" }, { type: "string", maxLength: 8 }] },
    },
    required: ["colors", "kind"],
  },
  "$ref within the schema": {
    $defs: { item: { type: "object", properties: { id: { type: "integer", minimum: 1, maximum: 99 } }, required: ["id"] } },
    type: "object",
    properties: { items: { type: "array", items: { $ref: "#/$defs/item" }, maxItems: 3 } },
    required: ["items"],
  },
};

describe("structured output (the bundled demo model, temperature 1)", () => {
  let model: GemmaModel;
  before(async () => {
    model = await loadModel();
  });

  for (const [what, schema] of Object.entries(SCHEMAS)) {
    it(`json_schema, ${what}: every seed's reply parses and validates`, async () => {
      const validate = new Ajv().compile(schema);
      for (const seed of [1, 2, 3, 4, 5]) {
        const generation = model.generate("Answer in JSON:", {
          temperature: 1,
          seed,
          maxTokens: 400,
          responseFormat: { type: "json_schema", schema },
        });
        const text = await generation.complete();
        assert.equal(generation.finishReason, "stop", `seed ${seed}: ${text}`);
        assert.ok(validate(JSON.parse(text)), `seed ${seed}: ${text} ${JSON.stringify(validate.errors)}`);
      }
    });
  }

  it("holds under every sampler setting: top-k, top-p, min-p, penalties, high temperature, greedy", async () => {
    const schema = SCHEMAS["nested objects with optional fields"]!;
    const validate = new Ajv().compile(schema);
    for (const sampling of [
      { temperature: 1.5, topK: 40 },
      { temperature: 1, topP: 0.8, minP: 0.05 },
      { temperature: 1, repetitionPenalty: 1.5, presencePenalty: 1, frequencyPenalty: 0.5 },
      { temperature: 0 },
    ]) {
      const text = await model
        .generate("JSON:", { ...sampling, seed: 7, maxTokens: 400, responseFormat: { type: "json_schema", schema } })
        .complete();
      assert.ok(validate(JSON.parse(text)), `${JSON.stringify(sampling)}: ${text}`);
    }
  });

  it("the same prompt without a response format is not JSON (the constraint is what makes it so)", async () => {
    const text = await model.generate("Answer in JSON:", { temperature: 1, seed: 1, maxTokens: 40 }).complete();
    assert.throws(() => JSON.parse(text));
  });

  it("json_object gives a JSON object; an EBNF grammar gives one of its sentences; chat replies are constrained from the model's turn", async () => {
    for (const seed of [4, 5]) {
      const text = await model
        .generate("Any JSON:", { temperature: 1, seed, maxTokens: 200, responseFormat: { type: "json_object" } })
        .complete();
      const value: unknown = JSON.parse(text);
      assert.ok(typeof value === "object" && value !== null && !Array.isArray(value), text);
    }
    const grammar = 'root ::= ("yes" | "no") " because " [a-z ]{1,12} "."';
    for (const seed of [1, 2, 3]) {
      const text = await model
        .generate("Is it so?", { temperature: 1, seed, maxTokens: 60, responseFormat: { type: "grammar", grammar } })
        .complete();
      assert.match(text, /^(yes|no) because [a-z ]{1,12}\.$/);
    }
    const chat = model.chat({ system: "You answer in JSON." });
    const schema = SCHEMAS["an array of enums and a const"]!;
    const reply = await chat
      .send("Give me JSON", { temperature: 1, seed: 9, maxTokens: 200, responseFormat: { type: "json_schema", schema } })
      .complete();
    assert.ok(new Ajv().compile(schema)(JSON.parse(reply)), reply);
  });

  it("refuses schemas it cannot guarantee, naming the keyword and where it is", () => {
    const refuse = (schema: Record<string, unknown>, message: RegExp) =>
      assert.throws(
        () => model.generate("x", { responseFormat: { type: "json_schema", schema } }),
        (e: unknown) => e instanceof GenerationError && message.test(e.message),
      );
    refuse({ type: "array", uniqueItems: true }, /schema uses "uniqueItems"/);
    refuse({ type: "object", properties: { s: { type: "string", pattern: "^a" } } }, /schema\.properties\.s uses "pattern"/);
    refuse({ type: "number", minimum: 0.5 }, /minimum must be an integer/);
    refuse({ type: "number", minimum: 1 }, /minimum is supported on "type": "integer" only/);
    refuse({ $ref: "#/$defs/missing" }, /points to nothing in the schema/);
    refuse({ type: "strin" }, /type "strin" is not a JSON type/);
    assert.throws(() => model.generate("x", { responseFormat: { type: "xml" } as never }), /type "xml" is not one of/);
  });
});

describe("structured output through the server and the official openai client", () => {
  let server: RunningServer;
  let client: OpenAI;
  before(async () => {
    server = await startServer(await loadModel(), { modelName: "kjv", port: 0, log: () => {} });
    client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: "unused", maxRetries: 0 });
  });
  after(() => server.close(0));

  const schema = SCHEMAS["nested objects with optional fields"]!;

  it("response_format json_schema (strict), whole and streamed, validates", async () => {
    const validate = new Ajv().compile(schema);
    const response_format = {
      type: "json_schema" as const,
      json_schema: { name: "person", schema: schema as Record<string, unknown>, strict: true },
    };
    for (const seed of [1, 2]) {
      const request = {
        model: "kjv",
        messages: [{ role: "user" as const, content: "Who are you?" }],
        response_format,
        seed,
        max_tokens: 400,
      };
      const whole = await client.chat.completions.create(request);
      const content = whole.choices[0]!.message.content!;
      assert.equal(whole.choices[0]!.finish_reason, "stop");
      assert.ok(validate(JSON.parse(content)), content);
      let streamed = "";
      const stream = await client.chat.completions.create({ ...request, stream: true });
      for await (const chunk of stream) streamed += chunk.choices[0]?.delta.content ?? "";
      assert.equal(streamed, content);
    }
    const object = await client.chat.completions.create({
      model: "kjv",
      messages: [{ role: "user", content: "JSON please" }],
      response_format: { type: "json_object" },
      seed: 4,
      max_tokens: 200,
    });
    assert.equal(typeof JSON.parse(object.choices[0]!.message.content!), "object");
  });

  it("client.chat.completions.parse() with a zod schema returns the parsed object", async () => {
    const Person = z.object({ name: z.string().max(16), color: z.enum(["red", "green", "blue"]), tall: z.boolean() });
    const completion = await client.chat.completions.parse({
      model: "kjv",
      messages: [{ role: "user", content: "Describe someone." }],
      response_format: zodResponseFormat(Person, "person"),
      seed: 3,
      max_tokens: 200,
    });
    const parsed = completion.choices[0]!.message.parsed;
    assert.ok(parsed);
    assert.deepEqual(Person.parse(parsed), parsed);
  });

  it("bad response formats get 400 in OpenAI's error shape, naming response_format", async () => {
    for (const [response_format, message] of [
      [{ type: "json_schema", json_schema: { name: "x", schema: { type: "array", uniqueItems: true } } }, /uses "uniqueItems"/],
      [{ type: "json_schema", json_schema: { schema: { type: "object" } } }, /json_schema\.name/],
      [{ type: "json_schema" }, /json_schema' must be an object/],
      [{ type: "yaml" }, /type "yaml" is not one of/],
    ] as const) {
      const res = await fetch(`${server.url}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ model: "kjv", messages: [{ role: "user", content: "x" }], response_format }),
      });
      assert.equal(res.status, 400);
      const body = (await res.json()) as { error: { message: string; type: string; param: string } };
      assert.equal(body.error.type, "invalid_request_error");
      assert.match(body.error.param, /^response_format/);
      assert.match(body.error.message, message);
    }
  });
});
