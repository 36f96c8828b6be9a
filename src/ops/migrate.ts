import { InvalidInputError } from "../errors.js";
import type { RowPage, Store } from "../store/store.js";
import { EXPORT_TABLES } from "../store/tables.js";

/** Rows that record what happened to tasks; copied once their tasks have landed (those of no task: on the first run). */
const HISTORY: readonly string[] = ["lease_conflicts", "ownership_events", "audit_records"];
import type { SettingsChange } from "../store/types.js";

/** What `migrate` copied, per kind of row; rows the target already held are not counted. */
export interface MigrateCounts {
  tasks: number;
  steps: number;
  outputs: number;
  edges: number;
  kv: number;
  idempotencyKeys: number;
  leaseConflicts: number;
  ownershipEvents: number;
  /** Records of the store's own audit (a PostgreSQL source); a SQLite root's audit file stays in the root. */
  auditRecords: number;
  settingsHistory: number;
  counters: number;
}

export interface MigrateResult {
  from: string;
  to: string;
  copied: MigrateCounts;
  /** Tasks of this store the target held already (an earlier run copied them). */
  alreadyPresent: { tasks: number };
  /** Steps that were RUNNING here and arrive READY with a new lease epoch. */
  requeued: number;
  /** Whether an earlier run had copied from this store into the target. */
  rerun: boolean;
}

export interface MigrateOptions {
  /** Add to a target that holds tasks of another store. */
  merge: boolean;
  nowMs: number;
  /** Settings changes recorded only in the root's audit log (before the store kept them). */
  legacySettings?: SettingsChange[];
}

/**
 * Copies every task of `source` (each status, with steps, inputs, outputs, edges, checkpoints,
 * idempotency keys, lease conflicts and ownership events) and the settings history into
 * `target`, from the source's logical export. Tasks the target holds already are skipped with
 * all their rows, so a second run copies nothing twice; steps get new row ids in the target,
 * so a store in use can take them (`merge`). Steps RUNNING in the source arrive READY with a
 * bumped epoch (the interrupted attempt is not counted). Node rows stay behind: nodes register
 * themselves with the store they work on.
 *
 * A run cut short (kill, lost connection) leaves nothing half-copied that a rerun would skip: a
 * task's row is written only after all of its steps, inputs, outputs and edges (a second pass
 * over the tasks), so a task row in the target means a complete task, and a rerun first removes
 * the rows of tasks whose row never arrived (Store.removeOrphanRows), then copies them again.
 * Their history (lease conflicts, ownership events, audit records) is copied after their task
 * rows; a run cut short between the two leaves that history out rather than copying it twice.
 */
export async function migrateStore(source: Store, target: Store, o: MigrateOptions): Promise<MigrateResult> {
  const origin = await source.meta("origin");
  const targetOrigin = await target.meta("origin");
  if (origin === null || origin === targetOrigin) {
    throw new InvalidInputError([{ where: target.location, message: "is the store being migrated; give another store with --to" }]);
  }
  const mark = `imported-from:${origin}`;
  const earlier = await target.meta(mark);
  const { total } = await target.listTasks({ limit: 1, offset: 0 });
  if (total > 0 && earlier === null && !o.merge) {
    throw new InvalidInputError([{
      where: target.location,
      message: `holds ${total} task(s) of another store; pass --merge to add this root's tasks to them`,
    }]);
  }
  // Marked first: a run cut short is a rerun, never refused as "another store".
  const before = earlier === null ? null : (JSON.parse(earlier) as { firstAtMs: number; historyFrom?: number });
  const runMark = { from: source.location, firstAtMs: before?.firstAtMs ?? o.nowMs, lastAtMs: o.nowMs, ...(before?.historyFrom ? { historyFrom: before.historyFrom } : {}) };
  await target.setMeta(mark, JSON.stringify(runMark));

  if (earlier !== null) await target.removeOrphanRows();

  const copied: MigrateCounts = {
    tasks: 0, steps: 0, outputs: 0, edges: 0, kv: 0, idempotencyKeys: 0, leaseConflicts: 0, ownershipEvents: 0, auditRecords: 0, settingsHistory: 0, counters: 0,
  };
  let present = 0;
  let requeued = 0;
  const sourceTasks = new Set<string>();
  const newTasks = new Set<string>();
  const stepIds = new Map<number, number>();
  const ofNewTask = (r: Record<string, unknown>) => newTasks.has(r.task_id as string);

  // Pass 1: which tasks are new, and all of their rows but the task row itself.
  const copyRows = async (page: RowPage): Promise<void> => {
    const rows = page.rows;
    switch (page.table) {
      case "tasks": {
        const ids = rows.map((r) => r.task_id as string);
        for (const id of ids) sourceTasks.add(id);
        const held = await target.taskStatuses(ids);
        for (const id of ids) if (!held.has(id)) newTasks.add(id);
        present += held.size;
        return;
      }
      case "steps": {
        const mine = rows.filter(ofNewTask).map((r) => {
          if (r.status !== "RUNNING") return r;
          requeued++;
          return {
            ...r, status: "READY", ready_at_ms: o.nowMs, lease_owner: null, lease_epoch: (r.lease_epoch as number) + 1,
            lease_expires_at_ms: null, attempt: Math.max(0, (r.attempt as number) - 1), progress_pct: null, progress_message: null,
          };
        });
        if (mine.length === 0) return;
        const r = await target.importRows({ table: "steps", rows: mine }, { freshIds: true, returning: ["id", "task_id", "step_id"] });
        const fresh = new Map(r.rows.map((x) => [`${x.task_id as string}\u0000${x.step_id as string}`, x.id as number]));
        for (const s of mine) {
          const id = fresh.get(`${s.task_id as string}\u0000${s.step_id as string}`);
          if (id !== undefined) stepIds.set(s.id as number, id);
        }
        copied.steps += r.inserted;
        return;
      }
      case "step_inputs":
      case "step_outputs": {
        const mine = rows.filter((r) => stepIds.has(r.step_row_id as number)).map((r) => ({ ...r, step_row_id: stepIds.get(r.step_row_id as number) }));
        const r = await target.importRows({ table: page.table, rows: mine });
        if (page.table === "step_outputs") copied.outputs += r.inserted;
        return;
      }
      case "edges":
        copied.edges += (await target.importRows({ table: "edges", rows: rows.filter(ofNewTask) })).inserted;
        return;
      case "kv": {
        // A task's checkpoints travel with it; shared namespaces key by key, never over the target's.
        const mine = rows.filter((r) => newTasks.has(r.namespace as string) || !sourceTasks.has(r.namespace as string));
        copied.kv += (await target.importRows({ table: "kv", rows: mine })).inserted;
        return;
      }
      case "counters":
        copied.counters += (await target.importRows(page)).inserted;
        return;
      case "settings_history":
        copied.settingsHistory += (await target.importRows(page)).inserted;
        return;
      default:
        return; // history waits for pass 3; nodes: every node registers with the store it works on
    }
  };
  await source.exportRows(copyRows, { tables: EXPORT_TABLES.map((t) => t.name).filter((t) => !HISTORY.includes(t)) });

  // Pass 2: the task rows, each now complete. Pass 3: their history.
  const landed = new Set<string>();
  await source.exportRows(async (page) => {
    const mine = page.rows.filter(ofNewTask);
    if (mine.length === 0) return;
    const r = await target.importRows({ table: "tasks", rows: mine }, { returning: ["task_id"] });
    for (const x of r.rows) landed.add(x.task_id as string);
    copied.tasks += r.inserted;
    copied.idempotencyKeys += mine.filter((x) => landed.has(x.task_id as string) && x.idempotency_key !== null).length;
  }, { tables: ["tasks"] });
  // History of no task goes over once: with the first run that reaches it (one cut short in it leaves the rest out rather than copying twice).
  const taskless = before?.historyFrom === undefined;
  if (taskless) await target.setMeta(mark, JSON.stringify({ ...runMark, historyFrom: o.nowMs }));
  await source.exportRows(async (page) => {
    const mine = page.rows.filter((r) => (r.task_id === null ? taskless : landed.has(r.task_id as string)));
    const n = (await target.importRows({ table: page.table, rows: mine }, { freshIds: true })).inserted;
    if (page.table === "lease_conflicts") copied.leaseConflicts += n;
    else if (page.table === "ownership_events") copied.ownershipEvents += n;
    else copied.auditRecords += n;
  }, { tables: HISTORY });
  if (o.legacySettings && o.legacySettings.length > 0) {
    copied.settingsHistory += (await target.importRows({ table: "settings_history", rows: o.legacySettings.map(settingsRow) })).inserted;
  }
  return { from: source.location, to: target.location, copied, alreadyPresent: { tasks: present }, requeued, rerun: earlier !== null };
}

function settingsRow(c: SettingsChange): Record<string, unknown> {
  return {
    entry_id: c.entryId, at_ms: c.atMs, node_id: c.nodeId, actor: c.actor, result: c.result,
    changed_fields_json: JSON.stringify(c.changedFields), error: c.error,
  };
}
