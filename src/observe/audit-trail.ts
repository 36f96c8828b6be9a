import type { TypedEmitter, EngineEventMap } from "../events.js";
import type { AuditInput, AuditLog } from "./audit.js";

/** Records kept for a later write while the audit file cannot be written (a full disk); the oldest go first past this. */
const MAX_UNWRITTEN = 10_000;

/**
 * Buffers audit records and writes them in one append per event-loop turn, so a burst of
 * submissions costs one write, not one per task. `flush()` writes what is pending at once.
 * A failed write (a full disk) never throws: it goes to `onError` and the records wait for the next flush.
 */
export class AuditTrail {
  readonly #log: AuditLog;
  readonly #onError: (error: Error) => void;
  #pending: AuditInput[] = [];
  #scheduled = false;

  constructor(log: AuditLog, onError: (error: Error) => void) {
    this.#log = log;
    this.#onError = onError;
  }

  record(input: AuditInput): void {
    this.#pending.push({ atMs: Date.now(), ...input });
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(() => this.flush());
  }

  flush(): void {
    this.#scheduled = false;
    const pending = this.#pending;
    this.#pending = [];
    try {
      this.#log.append(...pending);
    } catch (error) {
      this.#pending = [...pending, ...this.#pending].slice(-MAX_UNWRITTEN);
      this.#onError(new Error(`audit log ${this.#log.path}: ${(error as Error).message}; ${this.#pending.length} record(s) wait for the next write`, { cause: error }));
    }
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
