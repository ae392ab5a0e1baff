/**
 * `gemma-ts web`'s server: the browser build's chat page (dist/web) and a folder of models under
 * /models/ (range requests, a JSON index), with the headers that make the page cross-origin
 * isolated (COOP + COEP), which browsers require before workers may share memory.
 */
import { readdir, stat } from "node:fs/promises";
import { join, relative, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { Hono } from "hono";
import { listen } from "./listen.js";
import { allowedHostsFor, hostGuard } from "./host-guard.js";
import { fileResponse, pathInside, realFileInside } from "./static-files.js";

/** dist/web, two levels above both src/server (tsx) and dist/server (built). */
export const WEB_PAGE_DIR = fileURLToPath(new URL("../../dist/web/", import.meta.url));

export interface WebServerOptions {
  /** Folder whose .gguf files and checkpoint folders are served under /models/. */
  modelsDir: string;
  /** The built page (default dist/web). */
  pageDir?: string;
  /** Send COOP/COEP (default true); false shows the single-thread fallback. */
  isolate?: boolean;
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  /** One line per request for a model file. */
  log?: (line: string) => void;
  /** Host names accepted (see host-guard.ts); default: the loopback names when bound to loopback. */
  allowedHosts?: ReadonlySet<string> | null;
}

export interface ServedModel {
  name: string;
  /** Relative to the page: `models/x.gguf`, or `models/folder/` for a checkpoint folder. */
  url: string;
  size: number;
}

/** The .gguf files and checkpoint folders (config.json inside) in the models folder and one level down. */
export async function listServedModels(dir: string): Promise<ServedModel[]> {
  const found: ServedModel[] = [];
  const visit = async (folder: string, depth: number): Promise<void> => {
    const entries = await readdir(folder, { withFileTypes: true }).catch(() => []);
    const rel = (p: string) => relative(dir, p).split(sep).map(encodeURIComponent).join("/");
    if (depth > 0 && entries.some((e) => e.isFile() && e.name === "config.json")) {
      let size = 0;
      for (const e of entries) if (e.isFile()) size += (await stat(join(folder, e.name))).size;
      found.push({ name: relative(dir, folder), url: `models/${rel(folder)}/`, size });
      return;
    }
    for (const e of entries.sort((a, b) => a.name.localeCompare(b.name))) {
      const full = join(folder, e.name);
      if (e.isFile() && e.name.endsWith(".gguf") && e.name !== "tokenizer.gguf")
        found.push({ name: relative(dir, full), url: `models/${rel(full)}`, size: (await stat(full)).size });
      else if (e.isDirectory() && depth < 2) await visit(full, depth + 1);
    }
  };
  await visit(dir, 0);
  return found;
}

export function createWebApp(options: WebServerOptions): Hono {
  const pageDir = options.pageDir ?? WEB_PAGE_DIR;
  const isolation: Record<string, string> =
    options.isolate === false
      ? {}
      : {
          "Cross-Origin-Opener-Policy": "same-origin",
          "Cross-Origin-Embedder-Policy": "require-corp",
          "Cross-Origin-Resource-Policy": "same-origin",
        };
  const app = new Hono();
  const allowed = options.allowedHosts !== undefined ? options.allowedHosts : allowedHostsFor(options.host ?? "127.0.0.1");
  app.use(
    "*",
    hostGuard(allowed, (message) => new Response(`${message}\n`, { status: 403, headers: { "Content-Type": "text/plain", ...isolation } })),
  );

  app.get("/models/index.json", async (c) => c.json(await listServedModels(options.modelsDir), 200, isolation));
  app.on(["GET", "HEAD"], "/models/*", async (c) => {
    const path = await realFileInside(options.modelsDir, c.req.path.slice("/models/".length));
    const response = path
      ? await fileResponse(path, c.req.raw, isolation)
      : new Response("bad path\n", { status: 400, headers: isolation });
    options.log?.(`${c.req.method} ${c.req.path} ${c.req.header("Range") ?? "whole"} → ${response.status}`);
    return response;
  });
  app.on(["GET", "HEAD"], "/*", async (c) => {
    const path = pathInside(pageDir, c.req.path === "/" ? "index.html" : c.req.path);
    if (!path) return new Response("bad path\n", { status: 400, headers: isolation });
    if (c.req.path === "/" && !(await stat(path).catch(() => null))) {
      return new Response(`The page is not built (${pageDir} is missing); run npm run build.\n`, {
        status: 500,
        headers: { "Content-Type": "text/plain", ...isolation },
      });
    }
    return fileResponse(path, c.req.raw, { "Cache-Control": "no-cache", ...isolation });
  });
  return app;
}

export interface RunningWebServer {
  url: string;
  port: number;
  close(): Promise<void>;
}

export async function startWebServer(options: WebServerOptions): Promise<RunningWebServer> {
  const { server, port, origin } = await listen(createWebApp(options).fetch, options.host ?? "127.0.0.1", options.port ?? 0);
  return {
    url: `${origin}/`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        if ("closeAllConnections" in server) server.closeAllConnections();
      }),
  };
}
