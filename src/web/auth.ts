import { createHash, timingSafeEqual } from "node:crypto";
import { isIP } from "node:net";
import type { IncomingMessage } from "node:http";

/** What a request may do: read only, or read and write. */
export type Access = "ro" | "rw";

/** The accepted tokens; each access level has a current and a "next" token for rotation. */
export interface TokenSet {
  ro: string[];
  rw: string[];
}

/** True when no token is configured: the console is open (and must bind loopback only). */
export function isOpen(tokens: TokenSet): boolean {
  return tokens.ro.length === 0 && tokens.rw.length === 0;
}

const digest = (s: string) => createHash("sha256").update(s).digest();

/** The access a presented token grants, or null; compares digests in constant time. */
export function accessOf(tokens: TokenSet, presented: string | undefined): Access | null {
  if (isOpen(tokens)) return "rw";
  if (!presented) return null;
  const given = digest(presented);
  const matches = (list: string[]) => list.some((t) => timingSafeEqual(digest(t), given));
  if (matches(tokens.rw)) return "rw";
  if (matches(tokens.ro)) return "ro";
  return null;
}

/** The token of a request: `Authorization: Bearer`, else a `token` query or body parameter. */
export function presentedToken(req: IncomingMessage, params: Record<string, unknown>): string | undefined {
  const header = req.headers.authorization;
  const bearer = header ? /^Bearer\s+(\S+)\s*$/i.exec(header)?.[1] : undefined;
  if (bearer) return bearer;
  return typeof params.token === "string" && params.token !== "" ? params.token : undefined;
}

/** True for 127.0.0.0/8, ::1, ::ffff:127.x and "localhost". */
export function isLoopback(address: string): boolean {
  if (address === "localhost") return true;
  const a = address.replace(/^\[|\]$/g, "");
  if (isIP(a) === 4) return a.startsWith("127.");
  if (isIP(a) === 6) return a === "::1" || /^::ffff:127\./i.test(a);
  return false;
}

/** A sliding one-minute window of write attempts per source address. */
export class WriteRateLimiter {
  readonly #perMinute: number;
  readonly #hits = new Map<string, number[]>();

  constructor(perMinute: number) {
    this.#perMinute = perMinute;
  }

  /** Records an attempt; false (and nothing recorded) when `source` is over its limit. */
  take(source: string, nowMs = Date.now()): boolean {
    const recent = (this.#hits.get(source) ?? []).filter((t) => t > nowMs - 60_000);
    if (recent.length >= this.#perMinute) {
      this.#hits.set(source, recent);
      return false;
    }
    recent.push(nowMs);
    this.#hits.set(source, recent);
    if (this.#hits.size > 10_000) this.#prune(nowMs);
    return true;
  }

  /** Seconds until `source` may write again. */
  retryAfterSeconds(source: string, nowMs = Date.now()): number {
    const oldest = this.#hits.get(source)?.[0];
    return oldest === undefined ? 0 : Math.max(1, Math.ceil((oldest + 60_000 - nowMs) / 1000));
  }

  #prune(nowMs: number): void {
    for (const [source, hits] of this.#hits) if (hits.every((t) => t <= nowMs - 60_000)) this.#hits.delete(source);
  }
}
