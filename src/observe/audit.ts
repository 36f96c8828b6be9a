import { closeSync, existsSync, openSync, readSync, fstatSync, writeSync } from "node:fs";
import { ensureDir } from "../ops/dirs.js";
import { createReadStream } from "node:fs";
import { dirname } from "node:path";
import { createInterface } from "node:readline";
import { z } from "zod";

/** One line of `<root>/audit/audit.log` (DESIGN.md "Operating it"). */
export interface AuditRecord {
  /** ISO-8601 time of the action. */
  timestamp: string;
  /** What happened, as `noun.verb`: "task.submit", "task.cancel", "lease.conflict", "settings.reload"… */
  action: string;
  /** Who did it: "cli:<user>", "api", "node:<nodeId>", "web:<address>". */
  actor: string;
  /** What it was done to: "task/<id>", "step/<taskId>/<stepId>", "settings"… */
  resource: string;
  /** "ok", "refused" or "error". */
  result: "ok" | "refused" | "error";
  trace_id: string | null;
  span_id: string | null;
  task_id: string | null;
  step_id: string | null;
  details: Record<string, unknown>;
  /** On a shared store (PostgreSQL): the node that wrote it. The root's JSONL file does not carry it. */
  node_id?: string;
}

export type AuditInput = Omit<AuditRecord, "timestamp" | "trace_id" | "span_id" | "task_id" | "step_id" | "details" | "result"> &
  Partial<Pick<AuditRecord, "trace_id" | "span_id" | "task_id" | "step_id" | "details" | "result">> & { atMs?: number };

export const AuditQuerySchema = z.strictObject({
  taskId: z.string().min(1).optional(),
  action: z.string().min(1).optional(),
  /** Inclusive lower bound, ms since the epoch. */
  fromMs: z.number().int().optional(),
  /** Inclusive upper bound, ms since the epoch. */
  toMs: z.number().int().optional(),
  limit: z.number().int().min(1).max(100_000).default(100),
});
export type AuditQuery = z.input<typeof AuditQuerySchema>;

/**
 * Where audit records are kept: the root's JSONL file (`AuditLog`, the default) or, on a shared
 * store, the store's cluster-wide table (`StoreAuditLog`). `AuditTrail` buffers writes in front of it.
 */
export interface AuditSink {
  /** Where the records go, for error messages. */
  readonly where: string;
  /** Writes records (one write or statement for all of them). */
  append(inputs: readonly AuditInput[]): void | Promise<void>;
  /** The last `lines` records, oldest first. */
  tail(lines: number): AuditRecord[] | Promise<AuditRecord[]>;
  /** Records matching every given filter, newest first, at most `limit`. */
  query(query: AuditQuery): Promise<AuditRecord[]>;
  close(): void;
}

/**
 * The append-only JSONL audit log. Each append is one `write()` on a file opened with
 * O_APPEND, so records from several processes on one root never interleave.
 */
export class AuditLog implements AuditSink {
  readonly path: string;
  #fd: number | null = null;

  constructor(path: string) {
    this.path = path;
  }

  get where(): string {
    return this.path;
  }

  /** Appends records (one write for all of them). */
  append(inputs: readonly AuditInput[]): void {
    if (inputs.length === 0) return;
    const text = inputs.map((i) => `${JSON.stringify(toRecord(i))}\n`).join("");
    if (this.#fd === null) {
      ensureDir(dirname(this.path), "audit folder");
      this.#fd = openSync(this.path, "a");
    }
    writeSync(this.#fd, text);
  }

  /** The last `lines` records, oldest first. */
  tail(lines: number): AuditRecord[] {
    if (!existsSync(this.path) || lines <= 0) return [];
    const fd = openSync(this.path, "r");
    try {
      const size = fstatSync(fd).size;
      let position = size;
      let text = "";
      const chunk = Buffer.alloc(64 * 1024);
      while (position > 0 && text.split("\n").length <= lines + 1) {
        const length = Math.min(chunk.length, position);
        position -= length;
        readSync(fd, chunk, 0, length, position);
        text = chunk.toString("utf8", 0, length) + text;
      }
      return parseLines(text.split("\n").slice(position > 0 ? 1 : 0)).slice(-lines);
    } finally {
      closeSync(fd);
    }
  }

  /** Records matching every given filter, newest first, at most `limit`. */
  async query(query: AuditQuery): Promise<AuditRecord[]> {
    const q = AuditQuerySchema.parse(query);
    if (!existsSync(this.path)) return [];
    const matches: AuditRecord[] = [];
    const lines = createInterface({ input: createReadStream(this.path, "utf8"), crlfDelay: Infinity });
    for await (const line of lines) {
      const record = parseLine(line);
      if (!record) continue;
      if (q.taskId !== undefined && record.task_id !== q.taskId) continue;
      if (q.action !== undefined && record.action !== q.action) continue;
      const at = Date.parse(record.timestamp);
      if (q.fromMs !== undefined && at < q.fromMs) continue;
      if (q.toMs !== undefined && at > q.toMs) continue;
      matches.push(record);
      if (matches.length > q.limit * 4) matches.splice(0, matches.length - q.limit);
    }
    return matches.slice(-q.limit).reverse();
  }

  close(): void {
    if (this.#fd !== null) closeSync(this.#fd);
    this.#fd = null;
  }
}

export function toRecord(i: AuditInput): AuditRecord {
  return {
    timestamp: new Date(i.atMs ?? Date.now()).toISOString(),
    action: i.action,
    actor: i.actor,
    resource: i.resource,
    result: i.result ?? "ok",
    trace_id: i.trace_id ?? null,
    span_id: i.span_id ?? null,
    task_id: i.task_id ?? null,
    step_id: i.step_id ?? null,
    details: i.details ?? {},
  };
}

function parseLine(line: string): AuditRecord | null {
  if (line.trim() === "") return null;
  try {
    return JSON.parse(line) as AuditRecord;
  } catch {
    return null; // a torn last line after a crash is skipped, never fatal
  }
}

function parseLines(lines: string[]): AuditRecord[] {
  return lines.map(parseLine).filter((r): r is AuditRecord => r !== null);
}
