/**
 * The OpenAI-compatible HTTP API as a Hono app on Web-standard Request/Response:
 * GET /health, GET /v1/models, POST /v1/chat/completions, POST /v1/completions.
 */
import { createHash, randomUUID, timingSafeEqual } from "node:crypto";
import { Hono, type Context } from "hono";
import { bodyLimit } from "hono/body-limit";
import { streamSSE } from "hono/streaming";
import { GemmaError } from "../errors.js";
import type { GemmaModel } from "../gemma-model.js";
import type { GeneratedToken } from "../generate/generation.js";
import { TemplateLimitError } from "../tokenizer/template-limits.js";
import type { GemmaTokenizer } from "../tokenizer/tokenizer.js";
import { ApiError, invalid } from "./api-error.js";
import { chatLogprob, CompletionRun, promptIds, textLogprobs, type CompletionStats } from "./completion.js";
import { hostGuard, requireJson } from "./host-guard.js";
import { refuseOversizedPrompt } from "./prompt-size.js";
import { parseCompletionRequest, type CompletionRequest } from "./request.js";
import { SlotPool } from "./slots.js";

export interface ServerOptions {
  /** The name clients pass as `model` (default: the checkpoint folder's name). */
  modelName: string;
  /** Sequences generated at once (default 1). */
  parallel?: number;
  /** Requests allowed to wait for a slot before new ones get 503 (default 64). */
  maxQueue?: number;
  /** When set, /v1/* requires `Authorization: Bearer <apiKey>`. */
  apiKey?: string;
  /** Largest accepted request body in bytes (default 4 MiB). */
  maxBodyBytes?: number;
  /** One line per request. */
  log?: (line: string) => void;
  /** Host names accepted in the Host header; null or absent: any (see host-guard.ts). */
  allowedHosts?: ReadonlySet<string> | null;
}

export interface GemmaServerApp {
  app: Hono;
  pool: SlotPool;
  /** Aborts every generation in flight. */
  abortAll(): void;
  /** Number of requests being answered now. */
  readonly inFlight: number;
}

const sha256 = (text: string) => createHash("sha256").update(text).digest();

export function createApp(model: GemmaModel, options: ServerOptions): GemmaServerApp {
  const tokenizer = model.tokenizer;
  if (!tokenizer) throw new GemmaError("serving needs a checkpoint with tokenizer.json");
  const pool = new SlotPool(model, options.parallel ?? 1, options.maxQueue ?? 64);
  const inFlight = new Set<AbortController>();
  const log = options.log ?? (() => {});
  const created = Math.floor(Date.now() / 1000);
  const app = new Hono();

  app.onError((error, c) => {
    if (error instanceof ApiError) {
      log(`${c.req.method} ${c.req.path} ${error.status} ${error.code ?? error.type}: ${error.message}`);
      if (error.status === 503) c.header("Retry-After", "1");
      return c.json(error.toJSON(), error.status);
    }
    if (error instanceof GemmaError) {
      log(`${c.req.method} ${c.req.path} 400: ${error.message}`);
      return c.json(invalid(error.message).toJSON(), 400);
    }
    log(`error ${c.req.method} ${c.req.path}: ${(error as Error).stack ?? String(error)}`);
    return c.json(new ApiError(500, "internal server error", "server_error").toJSON(), 500);
  });
  app.notFound((c) => c.json(new ApiError(404, `no route for ${c.req.method} ${c.req.path}`, "not_found_error").toJSON(), 404));

  app.use("*", hostGuard(options.allowedHosts ?? null, (message) => {
    throw new ApiError(403, message, "permission_error", null, "host_not_allowed");
  }));
  app.use("/v1/*", requireJson((message) => {
    throw new ApiError(415, message, "invalid_request_error", null, "unsupported_media_type");
  }));

  app.get("/health", (c) => c.json({ status: "ok", model: options.modelName, running: pool.busy, queued: pool.queued }));

  if (options.apiKey !== undefined) {
    const expected = sha256(`Bearer ${options.apiKey}`);
    app.use("/v1/*", async (c, next) => {
      // Hashing first makes the comparison constant-time whatever the header's length.
      if (!timingSafeEqual(sha256(c.req.header("authorization") ?? ""), expected)) {
        throw new ApiError(401, "invalid or missing API key (send Authorization: Bearer <key>)", "authentication_error", null, "invalid_api_key");
      }
      await next();
    });
  }
  app.use(
    "/v1/*",
    bodyLimit({
      maxSize: options.maxBodyBytes ?? 4 * 1024 * 1024,
      onError: () => {
        throw new ApiError(413, `request body is larger than ${options.maxBodyBytes ?? 4 * 1024 * 1024} bytes`, "invalid_request_error", null, "request_too_large");
      },
    }),
  );

  const modelObject = { id: options.modelName, object: "model", created, owned_by: "gemma-ts" };
  app.get("/v1/models", (c) => c.json({ object: "list", data: [modelObject] }));
  app.get("/v1/models/:id{.+}", (c) => {
    if (c.req.param("id") !== options.modelName) throw new ApiError(404, `model '${c.req.param("id")}' not found`, "not_found_error", "model", "model_not_found");
    return c.json(modelObject);
  });

  const handle = (kind: "chat" | "text") => async (c: Context) => {
    let body: unknown;
    try {
      body = await c.req.json();
    } catch {
      throw invalid("the request body is not valid JSON");
    }
    const req = parseCompletionRequest(body, kind);
    if (req.model !== null && req.model !== options.modelName) {
      throw new ApiError(404, `model '${req.model}' not found; this server serves '${options.modelName}'`, "not_found_error", "model", "model_not_found");
    }
    const field = kind === "chat" ? "messages" : "prompt";
    await refuseOversizedPrompt(tokenizer, req.kind === "chat" ? req.messages.map((m) => m.content) : [req.prompt], model.config.maxPositions, field);
    let ids: number[];
    try {
      ids = promptIds(model, tokenizer, req);
    } catch (e) {
      // The template is the model file's, not the client's: a runaway one is a server fault.
      if (e instanceof TemplateLimitError) throw new ApiError(500, e.message, "server_error");
      if (e instanceof GemmaError) throw invalid(e.message, field);
      throw e;
    }
    const id = `${kind === "chat" ? "chatcmpl" : "cmpl"}-${randomUUID().replaceAll("-", "")}`;
    const controller = new AbortController();
    c.req.raw.signal.addEventListener("abort", () => controller.abort(), { once: true });
    const slot = await pool.acquire(ids, controller.signal);
    let run: CompletionRun;
    try {
      run = new CompletionRun(pool, slot, model, ids, req, controller.signal);
    } catch (e) {
      pool.release(slot);
      throw e;
    }
    inFlight.add(controller);
    const done = (status: string) => {
      inFlight.delete(controller);
      logLine(log, id, status, run.finish(), run.finishReason);
    };
    const meta = { id, created: Math.floor(Date.now() / 1000), model: options.modelName };
    if (!req.stream) {
      const tokens: GeneratedToken[] = [];
      try {
        for await (const t of run.tokens()) tokens.push(t);
      } finally {
        done(controller.signal.aborted ? "aborted" : "200");
      }
      return c.json(wholeResponse(tokenizer, req, meta, run, tokens));
    }
    return streamSSE(c, async (stream) => {
      stream.onAbort(() => controller.abort());
      try {
        const chunk = (payload: object) => stream.writeSSE({ data: JSON.stringify(payload) });
        if (kind === "chat") await chunk(chatChunk(meta, { role: "assistant", content: "" }, null, null, req));
        let textOffset = 0;
        for await (const t of run.tokens()) {
          if (kind === "chat") {
            await chunk(chatChunk(meta, { content: t.text }, null, req.logprobs === null ? null : { content: [chatLogprob(tokenizer, t)] }, req));
          } else {
            await chunk(textChunk(meta, t.text, null, req.logprobs === null ? null : textLogprobs(tokenizer, [t], textOffset)));
          }
          textOffset += t.text.length;
        }
        if (kind === "chat") await chunk(chatChunk(meta, {}, run.finishReason, null, req));
        else await chunk(textChunk(meta, "", run.finishReason, null));
        if (req.includeUsage) {
          await chunk({ ...meta, object: kind === "chat" ? "chat.completion.chunk" : "text_completion", choices: [], usage: run.usage() });
        }
        await stream.writeSSE({ data: "[DONE]" });
      } catch (e) {
        // Headers are sent: report in-band, as OpenAI does, and end the stream.
        const error = e instanceof ApiError ? e : new ApiError(500, "internal server error", "server_error");
        if (!(e instanceof ApiError)) log(`error in stream ${id}: ${(e as Error).stack ?? String(e)}`);
        await stream.writeSSE({ data: JSON.stringify(error.toJSON()) }).catch(() => {});
      } finally {
        done(controller.signal.aborted ? "aborted" : "200 stream");
      }
    });
  };
  app.post("/v1/chat/completions", handle("chat"));
  app.post("/v1/completions", handle("text"));

  return {
    app,
    pool,
    abortAll: () => inFlight.forEach((c) => c.abort()),
    get inFlight() {
      return inFlight.size;
    },
  };
}

interface Meta {
  id: string;
  created: number;
  model: string;
}

function wholeResponse(tokenizer: GemmaTokenizer, req: CompletionRequest, meta: Meta, run: CompletionRun, tokens: GeneratedToken[]) {
  const text = tokens.map((t) => t.text).join("");
  if (req.kind === "chat") {
    return {
      ...meta,
      object: "chat.completion",
      choices: [
        {
          index: 0,
          message: { role: "assistant", content: text, refusal: null },
          logprobs: req.logprobs === null ? null : { content: tokens.map((t) => chatLogprob(tokenizer, t)), refusal: null },
          finish_reason: run.finishReason,
        },
      ],
      usage: run.usage(),
    };
  }
  return {
    ...meta,
    object: "text_completion",
    choices: [{ index: 0, text, logprobs: req.logprobs === null ? null : textLogprobs(tokenizer, tokens, 0), finish_reason: run.finishReason }],
    usage: run.usage(),
  };
}

function chatChunk(meta: Meta, delta: object, finishReason: string | null, logprobs: object | null, req: CompletionRequest) {
  const choice = { index: 0, delta, logprobs, finish_reason: finishReason };
  return { ...meta, object: "chat.completion.chunk", choices: [choice], ...(req.includeUsage ? { usage: null } : {}) };
}

function textChunk(meta: Meta, text: string, finishReason: string | null, logprobs: object | null) {
  return { ...meta, object: "text_completion", choices: [{ index: 0, text, logprobs, finish_reason: finishReason }] };
}

function logLine(log: (line: string) => void, id: string, status: string, s: CompletionStats, finish: string): void {
  const ttft = s.timeToFirstTokenMs === null ? "-" : `${s.timeToFirstTokenMs.toFixed(0)}ms`;
  log(`${id} ${status} in=${s.promptTokens} cached=${s.cachedTokens} out=${s.completionTokens} ttft=${ttft} ${s.tokensPerSecond.toFixed(2)} tok/s finish=${finish}`);
}
