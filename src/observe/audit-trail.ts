import type { TypedEmitter, EngineEventMap } from "../events.js";
import type { AuditInput, AuditLog } from "./audit.js";

/**
 * Buffers audit records and writes them in one append per event-loop turn, so a burst of
 * submissions costs one write, not one per task. `flush()` writes what is pending at once.
 */
export class AuditTrail {
  readonly #log: AuditLog;
  #pending: AuditInput[] = [];
  #scheduled = false;

  constructor(log: AuditLog) {
    this.#log = log;
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
    this.#log.append(...pending);
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
