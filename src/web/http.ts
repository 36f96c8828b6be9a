import type { IncomingMessage, ServerResponse } from "node:http";
import { ErrorCode, isRelayMeshError } from "../errors.js";

/** An error answered with its HTTP status and a JSON body `{error: {code, message}}`. */
export class HttpError extends Error {
  readonly status: number;
  readonly code: string;
  constructor(status: number, code: string, message: string) {
    super(message);
    this.name = "HttpError";
    this.status = status;
    this.code = code;
  }
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { "content-type": "application/json; charset=utf-8", "cache-control": "no-store", ...headers });
  res.end(JSON.stringify(body));
}

/** The HTTP status and JSON body an error maps to. */
export function errorResponse(error: unknown): { status: number; body: { error: { code: string; message: string } } } {
  if (error instanceof HttpError) return { status: error.status, body: { error: { code: error.code, message: error.message } } };
  if (isRelayMeshError(error)) {
    const status = error.code === ErrorCode.NOT_FOUND ? 404
      : error.code === ErrorCode.INVALID_STATE ? 409
      : error.code === ErrorCode.INVALID_INPUT || error.code === ErrorCode.INVALID_OPTIONS ? 400
      : 500;
    return { status, body: { error: { code: error.code, message: error.message } } };
  }
  return { status: 500, body: { error: { code: "internal", message: error instanceof Error ? error.message : String(error) } } };
}

const MAX_BODY_BYTES = 64 * 1024;

/** The parameters of a request body: a JSON object, or form-encoded fields. */
export async function readBody(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new HttpError(413, "body_too_large", `request body is over ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString("utf8");
  if (text.trim() === "") return {};
  const type = (req.headers["content-type"] ?? "").split(";")[0]!.trim().toLowerCase();
  if (type === "application/json") {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new HttpError(400, "bad_json", "request body is not valid JSON");
    }
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw new HttpError(400, "bad_json", "request body must be a JSON object");
    return parsed as Record<string, unknown>;
  }
  if (type === "application/x-www-form-urlencoded" || type === "") return Object.fromEntries(new URLSearchParams(text));
  throw new HttpError(415, "unsupported_media_type", `unsupported content-type "${type}": send application/json or application/x-www-form-urlencoded`);
}

/** The origin of a request, as every write's audit record carries it. */
export function requestOrigin(req: IncomingMessage, route: string) {
  const header = (name: string) => {
    const v = req.headers[name];
    return Array.isArray(v) ? v.join(", ") : (v ?? null);
  };
  return {
    method: req.method ?? "",
    route,
    remoteAddress: req.socket.remoteAddress ?? null,
    userAgent: header("user-agent"),
    forwardedFor: header("x-forwarded-for"),
    origin: header("origin"),
    referer: header("referer"),
  };
}
