/** Node's HTTP server for a Web fetch handler (@hono/node-server): the API's and the web page's. Node adapter. */
import type { AddressInfo } from "node:net";
import type { ServerType } from "@hono/node-server";

/** A Node HTTP server for a fetch handler, listening once this resolves (rejects with EADDRINUSE and the like). */
export async function listen(
  fetch: (request: Request) => Response | Promise<Response>,
  host: string,
  port: number,
): Promise<{ server: ServerType; port: number; origin: string }> {
  // Node's HTTP adapter (about 11 MiB of a process) loads when a server starts, not with the library.
  const { serve } = await import("@hono/node-server");
  const server: ServerType = await new Promise((resolve, reject) => {
    const s = serve({ fetch, hostname: host, port }, () => resolve(s));
    s.once("error", reject);
  });
  const bound = (server.address() as AddressInfo).port;
  return { server, port: bound, origin: `http://${host.includes(":") ? `[${host}]` : host}:${bound}` };
}
