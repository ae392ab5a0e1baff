/**
 * Guards a server bound to this machine against other web pages. Without them any page the user
 * visits could drive the API: a DNS-rebinding page reaches 127.0.0.1 under its own host name, and
 * a cross-origin `text/plain` POST needs no preflight. So a loopback server answers only requests
 * whose Host is a loopback name (or one the user allowed), and POST bodies must be JSON.
 */
import type { MiddlewareHandler } from "hono";

const LOOPBACK_NAMES = ["localhost", "127.0.0.1", "::1"];

/** True for an address only this machine can reach. */
export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[|\]$/g, "");
  return h === "localhost" || h === "::1" || /^127(\.\d{1,3}){3}$/.test(h);
}

/** The host name of a Host header (no port, no IPv6 brackets), lower case; null when malformed. */
export function hostNameOf(header: string): string | null {
  const m = /^(?:\[([0-9a-f:.]+)\]|([^:[\]]+))(?::\d{1,5})?$/i.exec(header.trim());
  if (!m) return null;
  return (m[1] ?? m[2]!).toLowerCase();
}

/**
 * The Host names a server bound to `bindHost` accepts: for a loopback bind, the loopback names, the
 * bound address and `extra`; otherwise null (any: the user exposed the server on purpose).
 */
export function allowedHostsFor(bindHost: string, extra: readonly string[] = []): ReadonlySet<string> | null {
  if (!isLoopbackHost(bindHost)) return extra.length > 0 ? new Set(extra.map((h) => h.toLowerCase())) : null;
  return new Set([...LOOPBACK_NAMES, bindHost.toLowerCase().replace(/^\[|\]$/g, ""), ...extra.map((h) => h.toLowerCase())]);
}

/**
 * Refuses (403) a request whose Host header is not in `allowed`; null allows any. A request with no
 * Host header at all passes: browsers always send one (a page cannot remove it), so it cannot come
 * from the pages this guards against, and HTTP/1.0 health checks (HAProxy's `option httpchk`) send none.
 */
export function hostGuard(allowed: ReadonlySet<string> | null, refuse: (message: string) => Response): MiddlewareHandler {
  return async (c, next) => {
    const header = c.req.header("host");
    if (allowed && header !== undefined) {
      const name = hostNameOf(header);
      if (name === null || !allowed.has(name)) {
        return refuse(
          `Host ${JSON.stringify(header)} is not allowed; this server answers ${[...allowed].join(", ")} (add names with --allow-host)`,
        );
      }
    }
    await next();
  };
}

/** Refuses (415) a POST whose body is not declared as JSON. */
export function requireJson(refuse: (message: string) => Response): MiddlewareHandler {
  return async (c, next) => {
    if (c.req.method === "POST") {
      const type = (c.req.header("content-type") ?? "").split(";")[0]!.trim().toLowerCase();
      if (type !== "application/json") return refuse(`Content-Type must be application/json, got ${JSON.stringify(type || "none")}`);
    }
    await next();
  };
}
