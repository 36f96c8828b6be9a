import type { TypedEmitter, EngineEventMap } from "../events.js";
import type { AuditInput, AuditQuery, AuditRecord, AuditSink } from "./audit.js";

/** Records kept for a later write while the audit sink cannot be written (a full disk, the database unreachable); the oldest go first past this. */
const MAX_UNWRITTEN = 10_000;

/** How a trail batches its writes. */
export interface AuditBatching {
  /** Wait this long after the first buffered record before writing (0: at the end of the event-loop turn). */
  delayMs: number;
  /** Write at once when this many records are buffered. */
  maxRecords: number;
  /** The clock records are stamped with (the store's, on a shared store). */
  now: () => number;
}

/** The root's file: one append per event-loop turn. */
export const FILE_BATCHING: AuditBatching = { delayMs: 0, maxRecords: 10_000, now: Date.now };
/** A shared store: one multi-row insert every 100 ms, or at once past 500 records. */
export const STORE_BATCH_MS = 100;
export const STORE_BATCH_RECORDS = 500;

/**
 * The engine's audit: buffers records and writes them in batches (a burst of submissions costs
 * one write, not one per task), and answers reads after writing what is buffered. A failed write
 * never throws: it goes to `onError` and the records wait for the next flush.
 */
export class AuditTrail {
  readonly #sink: AuditSink;
  readonly #onError: (error: Error) => void;
  readonly #batching: AuditBatching;
  #pending: AuditInput[] = [];
  #scheduled = false;
  #writing: Promise<void> = Promise.resolve();

  constructor(sink: AuditSink, onError: (error: Error) => void, batching: AuditBatching = FILE_BATCHING) {
    this.#sink = sink;
    this.#onError = onError;
    this.#batching = batching;
  }

  /** Buffers a record (stamped now); it is written with the next batch. */
  record(input: AuditInput): void {
    this.#pending.push({ atMs: this.#batching.now(), ...input });
    if (this.#pending.length >= this.#batching.maxRecords) {
      void this.flush();
      return;
    }
    if (this.#scheduled) return;
    this.#scheduled = true;
    if (this.#batching.delayMs === 0) setImmediate(() => void this.flush());
    else setTimeout(() => void this.flush(), this.#batching.delayMs).unref();
  }

  /** Writes what is buffered (after the writes under way); never rejects. */
  flush(): Promise<void> {
    this.#scheduled = false;
    const batch = this.#pending;
    this.#pending = [];
    this.#writing = this.#writing.then(async () => {
      if (batch.length === 0) return;
      try {
        await this.#sink.append(batch);
      } catch (error) {
        this.#pending = [...batch, ...this.#pending].slice(-MAX_UNWRITTEN);
        this.#onError(new Error(`audit log ${this.#sink.where}: ${(error as Error).message}; ${this.#pending.length} record(s) wait for the next write`, { cause: error }));
      }
    });
    return this.#writing;
  }

  /** The last `lines` records, oldest first (what is buffered is written first). */
  async tail(lines: number): Promise<AuditRecord[]> {
    await this.flush();
    return this.#sink.tail(lines);
  }

  /** Records matching every given filter, newest first, at most `limit` (what is buffered is written first). */
  async query(query: AuditQuery): Promise<AuditRecord[]> {
    await this.flush();
    return this.#sink.query(query);
  }

  /** Writes what is buffered and closes the sink (graceful shutdown). */
  async close(): Promise<void> {
    await this.flush();
    this.#sink.close();
  }

  /** Records what the supervisor reports on its own: refused writes and reclaims. */
  follow(emitter: TypedEmitter<EngineEventMap>, nodeId: string): void {
    emitter.on("lease:conflict", (c) => this.record({
      action: "lease.conflict", actor: `node:${c.nodeId}`, resource: `step/${c.taskId}/${c.stepId}`, result: "refused",
      task_id: c.taskId, step_id: c.stepId, trace_id: c.traceId, span_id: c.spanId,
      details: { operation: c.operation, expectedLeaseEpoch: c.expectedLeaseEpoch, actualLeaseEpoch: c.actualLeaseEpoch },
    }));
    emitter.on("lease:reclaimed", (e) => this.record({
      action: "lease.reclaim", actor: `node:${nodeId}`, resource: "steps", details: { count: e.count },
    }));
  }
}
