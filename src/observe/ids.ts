import { randomFillSync } from "node:crypto";

// Random ids in hex, drawn from a pooled buffer: one randomFillSync per 512 ids, not per id.
const pool = Buffer.alloc(4096);
let offset = pool.length;

function randomHex(bytes: number): string {
  if (offset + bytes > pool.length) {
    randomFillSync(pool);
    offset = 0;
  }
  const hex = pool.toString("hex", offset, offset + bytes);
  offset += bytes;
  return hex;
}

/**
 * A UUID version 7 (RFC 9562): 48 bits of Unix milliseconds, then random bits. Ids made close in
 * time sort close together, so a store's indexes on them take appends, not writes to random pages.
 */
export function newTimeOrderedId(nowMs = Date.now()): string {
  const time = Math.max(0, Math.floor(nowMs)).toString(16).padStart(12, "0").slice(-12);
  const rand = randomHex(10);
  const variant = ((parseInt(rand[3]!, 16) & 0x3) | 0x8).toString(16);
  return `${time.slice(0, 8)}-${time.slice(8)}-7${rand.slice(0, 3)}-${variant}${rand.slice(4, 7)}-${rand.slice(8, 20)}`;
}

/** A W3C trace id: 32 hex digits, never all zero. */
export function newTraceId(): string {
  const id = randomHex(16);
  return /^0+$/.test(id) ? newTraceId() : id;
}

/** A W3C span (parent) id: 16 hex digits, never all zero. */
export function newSpanId(): string {
  const id = randomHex(8);
  return id === "0000000000000000" ? newSpanId() : id;
}

/** The traceparent of a span in a trace (sampled). */
export function traceparent(traceId: string, spanId: string): string {
  return `00-${traceId}-${spanId}-01`;
}
