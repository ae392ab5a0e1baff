import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Ajv } from "ajv";
import OpenAI from "openai";
import type { ChatCompletionMessageParam, ChatCompletionTool } from "openai/resources/chat/completions";
import { loadModel } from "../../src/gemma.js";
import { startServer, type RunningServer } from "../../src/server/serve.js";
import { splitToolCalls, ToolCallHoldback, TOOL_CALL_BEGIN } from "../../src/generate/tools.js";
import { writeTokenizerModel } from "../helpers/tokenizer.js";

const WEATHER = {
  type: "object",
  properties: { city: { type: "string", maxLength: 12 }, unit: { enum: ["celsius", "fahrenheit"] } },
  required: ["city", "unit"],
};
const ADD = {
  type: "object",
  properties: { a: { type: "integer", minimum: 0, maximum: 99 }, b: { type: "integer", minimum: 0, maximum: 99 } },
  required: ["a", "b"],
};
const TOOLS: ChatCompletionTool[] = [
  { type: "function", function: { name: "get_weather", description: "Current weather in a city", parameters: WEATHER } },
  {
    type: "function",
    function: {
      name: "add",
      description: "Adds two integers",
      parameters: ADD,
    },
  },
];

describe("tool calls through the server and the official openai client (a tiny model with the real Gemma vocabulary)", () => {
  let server: RunningServer;
  let client: OpenAI;
  before(async () => {
    server = await startServer(await loadModel(await writeTokenizerModel()), { modelName: "kjv", port: 0, log: () => {} });
    client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: "unused", maxRetries: 0 });
  });
  after(() => server.close(0));

  const validWeather = new Ajv().compile(WEATHER);

  it("a round trip: a required call, its result as a tool message, then a final answer; whole and streamed alike", async () => {
    const messages: ChatCompletionMessageParam[] = [{ role: "user", content: "What is the weather in Paris?" }];
    const request = {
      model: "kjv",
      messages,
      tools: TOOLS,
      tool_choice: { type: "function" as const, function: { name: "get_weather" } },
      seed: 1,
      max_tokens: 200,
    };
    const first = await client.chat.completions.create(request);
    const choice = first.choices[0]!;
    assert.equal(choice.finish_reason, "tool_calls");
    const calls = choice.message.tool_calls!;
    assert.equal(calls.length >= 1, true);
    const call = calls[0]!;
    assert.ok(call.type === "function" && call.function.name === "get_weather");
    assert.match(call.id, /^call_/);
    assert.ok(validWeather(JSON.parse(call.function.arguments)), call.function.arguments);

    // Streamed: the same call, assembled from delta.tool_calls; no part of it leaks into content.
    const stream = await client.chat.completions.create({ ...request, messages: [...messages], stream: true });
    let content = "";
    let args = "";
    let name = "";
    let finish: string | null = null;
    for await (const chunk of stream) {
      const c = chunk.choices[0];
      if (!c) continue;
      content += c.delta.content ?? "";
      for (const t of c.delta.tool_calls ?? []) {
        name += t.function?.name ?? "";
        args += t.function?.arguments ?? "";
      }
      finish = c.finish_reason ?? finish;
    }
    assert.equal(finish, "tool_calls");
    assert.equal(content, "");
    assert.equal(name, "get_weather");
    assert.equal(args, call.function.arguments);

    // The result goes back as a tool message; the model answers in text (tools offered, none required).
    messages.push(choice.message as ChatCompletionMessageParam, { role: "tool", tool_call_id: call.id, content: '{"temperature": 21}' });
    const answer = await client.chat.completions.create({
      model: "kjv",
      messages,
      tools: TOOLS,
      tool_choice: "none",
      seed: 2,
      max_tokens: 30,
    });
    assert.equal(answer.choices[0]!.message.tool_calls, undefined);
    assert.ok(answer.choices[0]!.message.content!.length > 0);
  });

  it("tool_choice required picks among the tools with valid arguments; parallel_tool_calls false means one call", async () => {
    const validAdd = new Ajv().compile(ADD);
    const required = (seed: number, parallel: boolean) =>
      client.chat.completions.create({
        model: "kjv",
        messages: [{ role: "user", content: "Help me." }],
        tools: TOOLS,
        tool_choice: "required",
        parallel_tool_calls: parallel,
        seed,
        max_tokens: 300,
      });
    for (const seed of [1, 2, 3, 4]) {
      const reply = await required(seed, false);
      const calls = reply.choices[0]!.message.tool_calls!;
      assert.equal(calls.length, 1, `seed ${seed}`);
      const { name, arguments: args } = (calls[0] as { function: { name: string; arguments: string } }).function;
      assert.ok(name === "get_weather" ? validWeather(JSON.parse(args)) : validAdd(JSON.parse(args)), `${name} ${args}`);
    }
    // The flag is what limits them: allowed, the same requests make several calls for some seed.
    const counts = [];
    for (const seed of [1, 2, 3, 4]) {
      const reply = await required(seed, true);
      counts.push(reply.choices[0]!.message.tool_calls!.length);
    }
    assert.ok(
      counts.some((n) => n > 1),
      `calls per reply: ${counts}`,
    );
  });

  it("tool_choice auto decodes text or a call: whichever the model starts, the reply is one or the other, never a broken call", async () => {
    for (const seed of [5, 6, 7, 8]) {
      const reply = await client.chat.completions.create({
        model: "kjv",
        messages: [{ role: "user", content: "Hi" }],
        tools: TOOLS,
        seed,
        max_tokens: 60,
      });
      const { message, finish_reason } = reply.choices[0]!;
      if (finish_reason === "tool_calls") assert.ok(message.tool_calls!.length >= 1);
      else assert.ok(!(message.content ?? "").includes(TOOL_CALL_BEGIN) || finish_reason === "length", message.content ?? "");
    }
  });

  it("bad tools get 400 in OpenAI's error shape, naming the parameter", async () => {
    const bad = async (extra: Record<string, unknown>, param: RegExp, message: RegExp) => {
      const res = await fetch(`${server.url}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ model: "kjv", messages: [{ role: "user", content: "x" }], ...extra }),
      });
      assert.equal(res.status, 400);
      const body = (await res.json()) as { error: { message: string; type: string; param: string } };
      assert.equal(body.error.type, "invalid_request_error");
      assert.match(body.error.param, param);
      assert.match(body.error.message, message);
    };
    await bad({ tools: [{ type: "function", function: { name: "bad name!" } }] }, /^tools\[0\]\.function\.name$/, /letters, digits/);
    await bad(
      { tools: [{ type: "function", function: { name: "f", parameters: { type: "array", uniqueItems: true } } }] },
      /^tools\[0\]\.function\.parameters$/,
      /uses "uniqueItems"/,
    );
    await bad(
      { tools: TOOLS, tool_choice: { type: "function", function: { name: "nope" } } },
      /^tool_choice$/,
      /"nope", which is not in 'tools'/,
    );
    await bad({ tool_choice: "required" }, /^tool_choice$/, /needs 'tools'/);
    await bad({ tools: TOOLS, response_format: { type: "json_object" } }, /^response_format$/, /cannot be combined/);
    await bad({ messages: [{ role: "tool", content: "x" }] }, /^messages\[0\]$/, /tool_call_id/);
    await bad(
      {
        messages: [
          { role: "assistant", content: null, tool_calls: [{ id: "c", type: "function", function: { name: "f", arguments: "{oops" } }] },
        ],
      },
      /^messages\[0\]\.tool_calls$/,
      /arguments must be a JSON string/,
    );
  });
});

describe("tool calls in the library", () => {
  it("generate(messages, { tools }) decodes a call whose arguments fit the function; a tool result goes back as a message", async () => {
    const model = await loadModel(await writeTokenizerModel());
    const tools = {
      tools: [{ name: "get_weather", description: "Current weather", parameters: WEATHER }],
      choice: "required" as const,
      parallel: false,
    };
    const valid = new Ajv().compile(WEATHER);
    for (const seed of [1, 2, 3]) {
      const generation = model.generate([{ role: "user", content: "Weather in Paris?" }], { tools, temperature: 1, seed, maxTokens: 200 });
      const { calls } = splitToolCalls(await generation.complete());
      assert.equal(calls!.length, 1);
      assert.ok(valid(JSON.parse(calls![0]!.function.arguments)), calls![0]!.function.arguments);
      const answer = model.generate(
        [
          { role: "user", content: "Weather in Paris?" },
          { role: "assistant", content: "", toolCalls: calls! },
          { role: "tool", content: '{"celsius": 21}', toolCallId: calls![0]!.id },
        ],
        { tools: { ...tools, choice: "none" }, temperature: 0, maxTokens: 8 },
      );
      assert.ok((await answer.complete()).length > 0);
    }
    assert.throws(() => model.generate("plain prompt", { tools }), /tools need the input as chat messages/);
  });
});

describe("tool calls in the reply text", () => {
  it("splits text and calls, and leaves a call cut short as text", () => {
    const { content, calls } = splitToolCalls(`Let me check. ${TOOL_CALL_BEGIN}[{"name": "add", "arguments": {"a": 1, "b": 2}}]}`);
    assert.equal(content, "Let me check.");
    assert.deepEqual(
      calls!.map((c) => [c.function.name, JSON.parse(c.function.arguments)]),
      [["add", { a: 1, b: 2 }]],
    );
    assert.deepEqual(splitToolCalls(`${TOOL_CALL_BEGIN}[{"name": "ad`), { content: `${TOOL_CALL_BEGIN}[{"name": "ad`, calls: null });
  });

  it("a stream holds back what may begin a call, and lets it go when it does not", () => {
    const h = new ToolCallHoldback();
    const out = ["Use {", '"tool', "s are fun", ' {"tool_calls": [', "x"].map((p) => h.push(p));
    assert.deepEqual(out, ["Use ", "", '{"tools are fun', " ", ""]);
    assert.equal(h.flush(), "");
    const plain = new ToolCallHoldback();
    assert.equal(plain.push('end {"tool_c'), "end ");
    assert.equal(plain.flush(), '{"tool_c');
  });
});
