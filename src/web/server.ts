import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import { randomBytes } from "node:crypto";
import type { RelayMesh } from "../engine.js";
import { accessOf, isLoopback, isOpen, presentedToken, WriteRateLimiter, type TokenSet } from "./auth.js";
import { TaskEventHub } from "./events.js";
import { errorResponse, HttpError, readBody, requestOrigin, sendJson } from "./http.js";
import { renderPage } from "./page.js";
import { readRoute, runWrite, WRITE_ROUTES, type WebCounters } from "./routes.js";

export interface WebConsoleOptions {
  tokens: TokenSet;
  /** Accept GET on write routes (counted and audited as such). @default false */
  allowGetWrites?: boolean;
  /** Write requests per source address per minute. @default 60 */
  writeRateLimitPerMin?: number;
  /** PEM key and certificate: serve HTTPS. */
  tls?: { key: Buffer; cert: Buffer };
  /** SSE store poll interval. @default 500 */
  eventsPollMs?: number;
}

export interface WebConsole {
  server: Server;
  counters: WebCounters;
  /** Ends the event streams and stops accepting connections; resolves once the server is closed. */
  close(force?: boolean): Promise<void>;
}

/** The `serve-web` console over the public RelayMesh API (CONTRACT.md "Web console API"). */
export function createWebConsole(mesh: RelayMesh, options: WebConsoleOptions): WebConsole {
  const counters: WebCounters = { writes: 0, getWrites: 0, refused: 0, rateLimited: 0 };
  const limiter = new WriteRateLimiter(options.writeRateLimitPerMin ?? 60);
  const events = new TaskEventHub(mesh, { ...(options.eventsPollMs !== undefined ? { pollMs: options.eventsPollMs } : {}) });

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? "/", "http://console");
    const path = url.pathname;
    const query = Object.fromEntries(url.searchParams);
    // An open console trusts loopback callers, so it refuses other host names (DNS rebinding).
    if (isOpen(options.tokens) && !isLoopback(hostnameOf(req.headers.host))) throw new HttpError(403, "forbidden", "an open console (no token) answers only to loopback host names");
    if (WRITE_ROUTES.has(path)) return handleWrite(req, res, path, query);
    const read = readRoute(path);
    const known = read !== null || path === "/" || path === "/events";
    if (!known) throw new HttpError(404, "not_found", `no route ${path}`);
    if (req.method !== "GET" && req.method !== "HEAD") throw new HttpError(405, "method_not_allowed", `${path} answers GET only`);
    if (accessOf(options.tokens, presentedToken(req, query)) === null) throw unauthorized();
    if (path === "/") {
      const nonce = randomBytes(16).toString("base64");
      res.writeHead(200, {
        "content-type": "text/html; charset=utf-8",
        "cache-control": "no-store",
        "content-security-policy": `default-src 'none'; script-src 'nonce-${nonce}'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`,
        "referrer-policy": "no-referrer",
        "x-content-type-options": "nosniff",
      }).end(renderPage(nonce));
      return;
    }
    if (path === "/events") return events.add(res);
    const result = await read!(mesh, query, () => ({ ...counters }));
    if ("json" in result) sendJson(res, 200, result.json);
    else res.writeHead(200, { "content-type": result.contentType, "cache-control": "no-store" }).end(result.text);
  };

  const handleWrite = async (req: IncomingMessage, res: ServerResponse, path: string, query: Record<string, string>) => {
    const body = req.method === "POST" ? await readBody(req) : {};
    const params = { ...query, ...body };
    const access = accessOf(options.tokens, presentedToken(req, params));
    if (access === null) throw unauthorized();
    const origin = requestOrigin(req, path);
    const viaGet = req.method === "GET";
    const taskIdParam = typeof params.taskId === "string" && params.taskId !== "" ? params.taskId : null;
    const audit = (result: "ok" | "refused" | "error", status: number, details: Record<string, unknown>, taskId = taskIdParam) =>
      mesh.audit.record({
        action: "web.write", actor: `web:${origin.remoteAddress ?? "unknown"}`, resource: taskId ? `task/${taskId}` : path.slice(1),
        result, task_id: taskId, details: { ...details, ...origin, status, viaGet, access },
      });
    const refuse = (error: HttpError, headers: Record<string, string> = {}) => {
      counters.refused++;
      audit("refused", error.status, { reason: error.message });
      sendJson(res, error.status, errorResponse(error).body, headers);
    };
    if (req.method !== "POST" && !(viaGet && options.allowGetWrites)) {
      return refuse(new HttpError(405, "method_not_allowed", `${path} is a write route: use POST${viaGet ? " (or start serve-web with --allow-get-writes)" : ""}`), { allow: "POST" });
    }
    if (access !== "rw") return refuse(new HttpError(403, "forbidden", `${path} needs a read-write token; this one is read-only`));
    if (origin.origin !== null && origin.origin !== "null" && hostOf(origin.origin) !== req.headers.host) {
      return refuse(new HttpError(403, "forbidden", `cross-origin write from ${origin.origin} refused`));
    }
    const source = origin.remoteAddress ?? "unknown";
    if (!limiter.take(source)) {
      counters.rateLimited++;
      const retryAfter = String(limiter.retryAfterSeconds(source));
      return refuse(new HttpError(429, "rate_limited", `more than ${options.writeRateLimitPerMin ?? 60} writes per minute from ${source}; retry in ${retryAfter} s`), { "retry-after": retryAfter });
    }
    if (viaGet) counters.getWrites++;
    try {
      const done = await runWrite(mesh, path, params);
      counters.writes++;
      audit("ok", 200, done.details, done.taskId);
      sendJson(res, 200, viaGet ? { ...(done.json as object), viaGet: true, getWrites: counters.getWrites } : done.json);
    } catch (error) {
      const { status, body: answer } = errorResponse(error);
      audit(status >= 500 ? "error" : "refused", status, { reason: answer.error.message });
      sendJson(res, status, answer);
    }
  };

  const listener = (req: IncomingMessage, res: ServerResponse) => {
    handle(req, res).catch((error: unknown) => {
      const { status, body } = errorResponse(error);
      if (res.headersSent) res.end();
      else sendJson(res, status, body, status === 401 ? { "www-authenticate": 'Bearer realm="relaymesh"' } : {});
    });
  };
  const server = options.tls ? createHttpsServer({ key: options.tls.key, cert: options.tls.cert }, listener) : createHttpServer(listener);

  let closing: Promise<void> | null = null;
  return {
    server, counters,
    close(force = false) {
      events.close();
      if (force) server.closeAllConnections();
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      });
      return closing;
    },
  };
}

function unauthorized(): HttpError {
  return new HttpError(401, "unauthorized", "a valid token is needed: Authorization: Bearer <token>, or a token query parameter");
}

function hostnameOf(host: string | undefined): string {
  try {
    return new URL(`http://${host ?? ""}`).hostname;
  } catch {
    return "";
  }
}

function hostOf(origin: string): string | null {
  try {
    return new URL(origin).host;
  } catch {
    return null;
  }
}
