/** Runs the API on Node's HTTP server (@hono/node-server) and shuts it down gracefully. Node adapter. */
import type { GemmaModel } from "../gemma-model.js";
import { createApp, type GemmaServerApp, type ServerOptions } from "./app.js";
import { allowedHostsFor } from "./host-guard.js";
import { listen } from "./listen.js";

export interface ListenOptions extends ServerOptions {
  /** Default 127.0.0.1: only this machine can connect unless asked otherwise. */
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  /** Host names accepted besides the loopback ones when bound to loopback (see host-guard.ts). */
  allowHosts?: readonly string[];
}

export interface RunningServer {
  url: string;
  port: number;
  api: GemmaServerApp;
  /**
   * Stops accepting connections, fails queued requests with 503, lets running ones finish for up to
   * `graceMs` and then cancels them.
   */
  close(graceMs?: number): Promise<void>;
}

export async function startServer(model: GemmaModel, options: ListenOptions): Promise<RunningServer> {
  const host = options.host ?? "127.0.0.1";
  const api = createApp(model, { ...options, allowedHosts: options.allowedHosts ?? allowedHostsFor(host, options.allowHosts) });
  const { server, port, origin } = await listen(api.app.fetch, host, options.port ?? 0);
  return {
    url: origin,
    port,
    api,
    async close(graceMs = 10_000) {
      api.pool.close();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      const deadline = Date.now() + graceMs;
      while (api.inFlight > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      api.abortAll();
      while (api.inFlight > 0) await new Promise((r) => setTimeout(r, 10));
      if ("closeAllConnections" in server) server.closeAllConnections();
      await closed;
    },
  };
}
