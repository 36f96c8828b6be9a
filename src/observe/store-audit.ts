import type { Store } from "../store/store.js";
import type { AuditEntry } from "../store/types.js";
import { AuditQuerySchema, toRecord, type AuditInput, type AuditQuery, type AuditRecord, type AuditSink } from "./audit.js";

/**
 * The cluster-wide audit of a shared store (PostgreSQL): every node writes its records to the
 * store, and reads answer with the records of every node, in time order (the store's clock), each
 * with the node that wrote it.
 */
export class StoreAuditLog implements AuditSink {
  readonly #store: Store;
  readonly #nodeId: string;

  constructor(store: Store, nodeId: string) {
    this.#store = store;
    this.#nodeId = nodeId;
  }

  get where(): string {
    return `the audit records of ${this.#store.location}`;
  }

  async append(inputs: readonly AuditInput[]): Promise<void> {
    await this.#store.appendAudit(inputs.map((i) => toEntry(toRecord(i), i.atMs, this.#nodeId)));
  }

  async tail(lines: number): Promise<AuditRecord[]> {
    return (await this.#store.auditEntries({ limit: lines })).map(fromEntry).reverse();
  }

  async query(query: AuditQuery): Promise<AuditRecord[]> {
    const q = AuditQuerySchema.parse(query);
    return (await this.#store.auditEntries(q)).map(fromEntry);
  }

  close(): void {
    // The store is the engine's; it closes it.
  }
}

function toEntry(r: AuditRecord, atMs: number | undefined, nodeId: string): AuditEntry {
  return {
    atMs: atMs ?? Date.parse(r.timestamp), nodeId, action: r.action, actor: r.actor, resource: r.resource, result: r.result,
    traceId: r.trace_id, spanId: r.span_id, taskId: r.task_id, stepId: r.step_id, detailsJson: JSON.stringify(r.details),
  };
}

function fromEntry(e: AuditEntry): AuditRecord {
  return {
    timestamp: new Date(e.atMs).toISOString(), action: e.action, actor: e.actor, resource: e.resource, result: e.result,
    trace_id: e.traceId, span_id: e.spanId, task_id: e.taskId, step_id: e.stepId,
    details: JSON.parse(e.detailsJson) as Record<string, unknown>, node_id: e.nodeId,
  };
}
