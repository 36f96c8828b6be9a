import type { SettingsChange } from "./types.js";

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
];

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
