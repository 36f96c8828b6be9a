import { StoreError } from "../errors.js";
import type { AuditEntry, NodeHeartbeat, NodeRecord, SettingsChange } from "./types.js";

/**
 * The tables a logical export carries, in load order, with the columns that are booleans
 * (INTEGER 0/1 on SQLite, BOOLEAN on PostgreSQL: exported as JSON booleans). Rows travel as
 * `{ column: value }` with the column names of the migrations, identical in both dialects.
 * A migration that adds a table adds it here.
 */
export interface TableSpec {
  name: string;
  /** Columns that order the export (a unique key), so it can be read in pages. */
  key: readonly string[];
  booleans: readonly string[];
  /** The BIGSERIAL column whose sequence must move past imported rows (PostgreSQL). */
  serial?: string;
}

export const EXPORT_TABLES: readonly TableSpec[] = [
  { name: "tasks", key: ["task_id"], booleans: ["fail_fast"] },
  { name: "steps", key: ["id"], booleans: [], serial: "id" },
  { name: "step_inputs", key: ["step_row_id"], booleans: [] },
  { name: "step_outputs", key: ["step_row_id"], booleans: [] },
  { name: "edges", key: ["task_id", "from_step", "to_step"], booleans: [] },
  { name: "lease_conflicts", key: ["id"], booleans: [], serial: "id" },
  { name: "counters", key: ["name"], booleans: [] },
  { name: "nodes", key: ["node_id"], booleans: [] },
  { name: "kv", key: ["namespace", "key"], booleans: ["deleted"] },
  { name: "ownership_events", key: ["id"], booleans: [], serial: "id" },
  { name: "settings_history", key: ["entry_id"], booleans: [] },
  { name: "dedupe_keys", key: ["key"], booleans: [] },
  { name: "rate_buckets", key: ["bucket"], booleans: [] },
  { name: "schedules", key: ["name"], booleans: ["paused"] },
  { name: "schedule_fires", key: ["name", "slot_key"], booleans: [] },
  { name: "audit_records", key: ["id"], booleans: [], serial: "id" },
];

/** What `exportRows` reads. */
export interface ExportOptions {
  /** Only these tables (default: every table of EXPORT_TABLES). */
  tables?: readonly string[];
}

/** The tables an export reads, in load order. */
export function exportTables(options: ExportOptions = {}): readonly TableSpec[] {
  return options.tables ? EXPORT_TABLES.filter((t) => options.tables!.includes(t.name)) : EXPORT_TABLES;
}

/**
 * What an import of `page` writes: its table, the columns of its rows (the serial column left out
 * with `freshIds`) and those to hand back, every name checked; null when the page is empty.
 */
export function importColumns(page: RowPage, options: ImportOptions): { spec: TableSpec; columns: string[]; returning: readonly string[] } | null {
  const spec = EXPORT_TABLES.find((t) => t.name === page.table);
  if (!spec) throw new StoreError(`import: unknown table "${page.table}"`);
  if (page.rows.length === 0) return null;
  const columns = Object.keys(page.rows[0]!).filter((c) => !(options.freshIds && c === spec.serial));
  const returning = options.returning ?? [];
  for (const c of [...columns, ...returning]) if (!/^[a-z_][a-z0-9_]*$/.test(c)) throw new StoreError(`import: bad column name "${c}" in table ${page.table}`);
  return { spec, columns, returning };
}

/** How `importRows` loads a page. */
export interface ImportOptions {
  /** Leave out the table's serial column: the store gives the rows new ids (merging into a store in use). */
  freshIds?: boolean;
  /** Columns of the inserted rows to hand back (rows skipped as already present are not). */
  returning?: readonly string[];
}

/** What `importRows` did: rows inserted (the rest were present already), with the `returning` columns of each. */
export interface ImportResult {
  inserted: number;
  rows: Record<string, unknown>[];
}

/** One page of exported rows. */
export interface RowPage {
  table: string;
  rows: Record<string, unknown>[];
}

/** A settings_history row (both dialects). */
export interface SettingsRow { entry_id: string; at_ms: number; node_id: string | null; actor: string; result: "ok" | "error"; changed_fields_json: string; error: string | null }

export function toSettingsChange(r: SettingsRow): SettingsChange {
  return {
    entryId: r.entry_id, atMs: r.at_ms, nodeId: r.node_id, actor: r.actor, result: r.result,
    changedFields: JSON.parse(r.changed_fields_json) as string[], error: r.error,
  };
}

/** A nodes row (both dialects). */
export interface NodeRow {
  node_id: string; hostname: string; pid: number; state: "running" | "stopped"; started_at_ms: number; last_heartbeat_ms: number;
  stopped_at_ms: number | null; membership: NodeRecord["status"]; membership_since_ms: number; agents_json: string | null;
  cpu_load: number | null; mem_load: number | null; running: number | null; capacity: number | null;
}

export function toNodeRecord(r: NodeRow): NodeRecord {
  return {
    nodeId: r.node_id, hostname: r.hostname, pid: r.pid, state: r.state, startedAtMs: r.started_at_ms,
    lastHeartbeatMs: r.last_heartbeat_ms, stoppedAtMs: r.stopped_at_ms, status: r.membership, statusSinceMs: r.membership_since_ms,
    agents: r.agents_json === null ? null : JSON.parse(r.agents_json) as string[],
    load: r.cpu_load === null ? null : { cpu: r.cpu_load, memory: r.mem_load ?? 0, running: r.running ?? 0, capacity: r.capacity ?? 0 },
  };
}

/** The optional columns of a heartbeat (null: keep the row's value). */
export function heartbeatColumns(h: NodeHeartbeat) {
  return {
    agentsJson: h.agents ? JSON.stringify(h.agents) : null,
    cpu: h.load?.cpu ?? null, memory: h.load?.memory ?? null, running: h.load?.running ?? null, capacity: h.load?.capacity ?? null,
  };
}

/** `{status, n}` rows as counts by status, with every standing present (0 when none). */
export function countsOf(rows: readonly { status: string; n: number }[]): Record<string, number> {
  const out: Record<string, number> = { ALIVE: 0, SUSPECT: 0, DEAD: 0, STOPPED: 0 };
  for (const r of rows) out[r.status] = Number(r.n);
  return out;
}

/** An audit_records row (both dialects). */
export interface AuditRow {
  id: number; at_ms: number; node_id: string; action: string; actor: string; resource: string; result: AuditEntry["result"];
  trace_id: string | null; span_id: string | null; task_id: string | null; step_id: string | null; details_json: string;
}

export function toAuditEntry(r: AuditRow): AuditEntry {
  return {
    atMs: r.at_ms, nodeId: r.node_id, action: r.action, actor: r.actor, resource: r.resource, result: r.result,
    traceId: r.trace_id, spanId: r.span_id, taskId: r.task_id, stepId: r.step_id, detailsJson: r.details_json,
  };
}

/** Counter name prefix of failed store operations: `store_errors_total:<operation>:<code>` (both stores). */
export const STORE_ERRORS_COUNTER = "store_errors_total";
