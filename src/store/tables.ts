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
  { name: "dedupe_keys", key: ["key"], booleans: [] },
  { name: "rate_buckets", key: ["bucket"], booleans: [] },
  { name: "schedules", key: ["name"], booleans: ["paused"] },
  { name: "schedule_fires", key: ["name", "slot_key"], booleans: [] },
];

/** One page of exported rows. */
export interface RowPage {
  table: string;
  rows: Record<string, unknown>[];
}
