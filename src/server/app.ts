/**
 * The OpenAI-compatible HTTP API as a Hono app on Web-standard Request/Response and Web Crypto:
 * routes (GET /health, GET /v1/models, POST /v1/chat/completions, POST /v1/completions), API-key
 * auth, Host and body guards, limits and the mapping of errors to OpenAI's error object. Requests
 * run in completion.ts, in the shapes of openai-shapes.ts, on the slots of slot-queue.ts.
 */
import { Hono, type Context } from "hono";
import { bodyLimit } from "hono/body-limit";
import { GemmaError } from "../errors.js";
import type { GemmaModel } from "../gemma-model.js";
import { TemplateLimitError } from "../tokenizer/template-limits.js";
import type { GemmaTokenizer } from "../tokenizer/tokenizer.js";
import { ApiError, invalid } from "./api-error.js";
import { CompletionRun, promptIds, sendCompletion, type CompletionStats } from "./completion.js";
import { ServerMetrics } from "./metrics.js";
import { hostGuard, requireJson } from "./host-guard.js";
import { modelObject } from "./openai-shapes.js";
import { refuseOversizedPrompt } from "./prompt-size.js";
import { parseCompletionRequest } from "./request.js";
import { SlotQueue } from "./slot-queue.js";

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
  pool: SlotQueue;
  /** Aborts every generation in flight. */
  abortAll(): void;
  /** Number of requests being answered now. */
  readonly inFlight: number;
}

/** SHA-256 by Web Crypto, so the app runs wherever Hono does. */
const sha256 = async (text: string) => new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)));

/** Equal-length byte arrays compared in constant time (no early exit). */
function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  let diff = a.length ^ b.length;
  for (let i = 0; i < Math.min(a.length, b.length); i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

export function createApp(model: GemmaModel, options: ServerOptions): GemmaServerApp {
  const tokenizer = model.tokenizer;
  if (!tokenizer) throw new GemmaError("serving needs a checkpoint with tokenizer.json");
  const pool = new SlotQueue(model, options.parallel ?? 1, options.maxQueue ?? 64);
  const inFlight = new Set<AbortController>();
  const log = options.log ?? (() => {});
  const app = new Hono();
  const metrics = new ServerMetrics();
  app.use("*", async (c, next) => {
    await next();
    metrics.request(c.req.path, c.res.status);
  });
  reportErrors(app, log);
  guard(app, options);
  app.get("/health", (c) => c.json({ status: "ok", model: options.modelName, running: pool.busy, queued: pool.queued }));
  app.get("/metrics", (c) =>
    c.body(metrics.render({ queued: pool.queued, busySlots: pool.busy, slots: pool.parallel, kvCacheBytes: pool.cacheBytes() }), 200, {
      "content-type": "text/plain; version=0.0.4; charset=utf-8",
    }),
  );
  authenticateAndLimit(app, options);
  modelRoutes(app, options.modelName);
  const run = completionHandler({ model, tokenizer, pool, inFlight, log, modelName: options.modelName, metrics });
  app.post("/v1/chat/completions", run("chat"));
  app.post("/v1/completions", run("text"));
  return {
    app,
    pool,
    abortAll: () => {
      for (const c of inFlight) c.abort();
    },
    get inFlight() {
      return inFlight.size;
    },
  };
}

/** Errors as OpenAI's error object: ApiErrors as they are, other GemmaErrors 400, the rest 500 (logged). */
function reportErrors(app: Hono, log: (line: string) => void): void {
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
}

/** Other web pages may not drive the server: Host names and JSON bodies (host-guard.ts). */
function guard(app: Hono, options: ServerOptions): void {
  app.use(
    "*",
    hostGuard(options.allowedHosts ?? null, (message) => {
      throw new ApiError(403, message, "permission_error", null, "host_not_allowed");
    }),
  );
  app.use(
    "/v1/*",
    requireJson((message) => {
      throw new ApiError(415, message, "invalid_request_error", null, "unsupported_media_type");
    }),
  );
}

/** The API key (when one is set) and the body size limit on /v1/*. */
function authenticateAndLimit(app: Hono, options: ServerOptions): void {
  if (options.apiKey !== undefined) {
    const expected = sha256(`Bearer ${options.apiKey}`);
    app.use("/v1/*", async (c, next) => {
      // Hashing first makes the comparison constant-time whatever the header's length.
      if (!sameBytes(await sha256(c.req.header("authorization") ?? ""), await expected)) {
        throw new ApiError(
          401,
          "invalid or missing API key (send Authorization: Bearer <key>)",
          "authentication_error",
          null,
          "invalid_api_key",
        );
      }
      await next();
    });
  }
  const maxSize = options.maxBodyBytes ?? 4 * 1024 * 1024;
  app.use(
    "/v1/*",
    bodyLimit({
      maxSize,
      onError: () => {
        throw new ApiError(413, `request body is larger than ${maxSize} bytes`, "invalid_request_error", null, "request_too_large");
      },
    }),
  );
}

function modelRoutes(app: Hono, modelName: string): void {
  const model = modelObject(modelName, Math.floor(Date.now() / 1000));
  app.get("/v1/models", (c) => c.json({ object: "list", data: [model] }));
  app.get("/v1/models/:id{.+}", (c) => {
    if (c.req.param("id") !== modelName)
      throw new ApiError(404, `model '${c.req.param("id")}' not found`, "not_found_error", "model", "model_not_found");
    return c.json(model);
  });
}

interface CompletionDeps {
  model: GemmaModel;
  tokenizer: GemmaTokenizer;
  pool: SlotQueue;
  inFlight: Set<AbortController>;
  log: (line: string) => void;
  modelName: string;
  metrics: ServerMetrics;
}

/** POST /v1/chat/completions and /v1/completions: validate, fit the context, wait for a slot, run. */
function completionHandler({ model, tokenizer, pool, inFlight, log, modelName, metrics }: CompletionDeps) {
  return (kind: "chat" | "text") => async (c: Context) => {
    let body: unknown;
    try {
      body = await c.req.json();
    } catch {
      throw invalid("the request body is not valid JSON");
    }
    const req = parseCompletionRequest(body, kind);
    if (req.model !== null && req.model !== modelName) {
      throw new ApiError(
        404,
        `model '${req.model}' not found; this server serves '${modelName}'`,
        "not_found_error",
        "model",
        "model_not_found",
      );
    }
    const field = kind === "chat" ? "messages" : "prompt";
    await refuseOversizedPrompt(
      tokenizer,
      req.kind === "chat" ? req.messages.map((m) => m.content) : [req.prompt],
      model.config.maxPositions,
      field,
    );
    let ids: number[];
    try {
      ids = promptIds(model, tokenizer, req);
    } catch (e) {
      // The template is the model file's, not the client's: a runaway one is a server fault.
      if (e instanceof TemplateLimitError) throw new ApiError(500, e.message, "server_error");
      if (e instanceof GemmaError) throw invalid(e.message, field);
      throw e;
    }
    const id = `${kind === "chat" ? "chatcmpl" : "cmpl"}-${crypto.randomUUID().replaceAll("-", "")}`;
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
      const stats = run.finish();
      metrics.completion(stats);
      logLine(log, id, status, stats, run.finishReason);
    };
    const meta = { id, created: Math.floor(Date.now() / 1000), model: modelName };
    return sendCompletion(c, run, req, meta, tokenizer, controller, log, done);
  };
}

function logLine(log: (line: string) => void, id: string, status: string, s: CompletionStats, finish: string): void {
  const ttft = s.timeToFirstTokenMs === null ? "-" : `${s.timeToFirstTokenMs.toFixed(0)}ms`;
  log(
    `${id} ${status} in=${s.promptTokens} cached=${s.cachedTokens} out=${s.completionTokens} ttft=${ttft} ` +
      `${s.tokensPerSecond.toFixed(2)} tok/s finish=${finish}`,
  );
}
