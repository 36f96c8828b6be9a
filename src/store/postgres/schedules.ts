import type { ScheduleDefinition, ScheduleFire, ScheduleFireResult, ScheduleRecord } from "../types.js";
import { PgBatch } from "./commit.js";
import { statements, type Queryable } from "./db.js";
import { bumpCounter } from "./flow.js";

/** Schedules and deadlines on PostgreSQL. */
const SQL = {
  dueDeadlines: `SELECT task_id FROM tasks WHERE deadline_at_ms <= $1 AND deadline_at_ms IS NOT NULL
    AND status IN ('PENDING', 'RUNNING') ORDER BY deadline_at_ms LIMIT $2`,
  get: `SELECT * FROM schedules WHERE name = $1`,
  list: `SELECT * FROM schedules ORDER BY name COLLATE "C"`,
  put: `INSERT INTO schedules (name, cron, timezone, spec_json, overlap, catch_up, catch_up_window_ms, jitter_ms, paused,
      next_slot_ms, next_at_ms, created_at_ms, updated_at_ms)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12)
    ON CONFLICT (name) DO UPDATE SET cron = excluded.cron, timezone = excluded.timezone, spec_json = excluded.spec_json,
      overlap = excluded.overlap, catch_up = excluded.catch_up, catch_up_window_ms = excluded.catch_up_window_ms,
      jitter_ms = excluded.jitter_ms, paused = excluded.paused, next_slot_ms = excluded.next_slot_ms, next_at_ms = excluded.next_at_ms,
      updated_at_ms = excluded.updated_at_ms
    RETURNING *, (xmax = 0) AS inserted`,
  setPaused: `UPDATE schedules SET paused = $2, next_slot_ms = $3, next_at_ms = $4, updated_at_ms = $5 WHERE name = $1 RETURNING *`,
  removeFires: `DELETE FROM schedule_fires WHERE name = $1`,
  remove: `DELETE FROM schedules WHERE name = $1 RETURNING 1`,
  due: `SELECT * FROM schedules WHERE next_at_ms <= $1 AND NOT paused ORDER BY next_at_ms LIMIT $2`,
  /** Compare-and-set on the next slot: of the nodes that saw one due slot, one advances it. */
  advance: `UPDATE schedules SET next_slot_ms = $3, next_at_ms = $4, updated_at_ms = $5, skipped_count = skipped_count + $6
    WHERE name = $1 AND next_slot_ms IS NOT DISTINCT FROM $2 RETURNING 1`,
  lock: `SELECT 1 FROM schedules WHERE name = $1 FOR UPDATE`,
  recordFire: `INSERT INTO schedule_fires (name, slot_key, slot_ms, task_id, outcome, node_id, at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7)
    ON CONFLICT (name, slot_key) DO NOTHING RETURNING 1`,
  fired: `UPDATE schedules SET last_slot_ms = $2, last_task_id = $3, fired_count = fired_count + 1 WHERE name = $1`,
  skipped: `UPDATE schedules SET last_slot_ms = $2, skipped_count = skipped_count + 1 WHERE name = $1`,
} as const;

const q = statements("sch", SQL);

interface ScheduleRow {
  name: string; cron: string; timezone: string | null; spec_json: string; overlap: string; catch_up: string;
  catch_up_window_ms: number | null; jitter_ms: number; paused: boolean; next_slot_ms: number | null; next_at_ms: number | null;
  last_slot_ms: number | null; last_task_id: string | null; fired_count: number; skipped_count: number; created_at_ms: number; updated_at_ms: number;
}

export async function dueDeadlines(db: Queryable, now: number, limit: number): Promise<string[]> {
  return (await q<{ task_id: string }>(db, "dueDeadlines", [now, limit])).map((r) => r.task_id);
}

export async function putSchedule(db: Queryable, d: ScheduleDefinition, now: number): Promise<{ schedule: ScheduleRecord; replaced: boolean }> {
  const [row] = await q<ScheduleRow & { inserted: boolean }>(db, "put", [d.name, d.cron, d.timezone, JSON.stringify(d.spec), d.overlap, d.catchUp,
    d.catchUpWindowMs, d.jitterMs, d.paused, d.nextSlotMs, d.nextAtMs, now]);
  return { schedule: toRecord(row!), replaced: !row!.inserted };
}

export async function getSchedule(db: Queryable, name: string): Promise<ScheduleRecord | null> {
  const [row] = await q<ScheduleRow>(db, "get", [name]);
  return row ? toRecord(row) : null;
}

export async function listSchedules(db: Queryable): Promise<ScheduleRecord[]> {
  return (await q<ScheduleRow>(db, "list")).map(toRecord);
}

export async function setSchedulePaused(db: Queryable, name: string, paused: boolean, next: { nextSlotMs: number | null; nextAtMs: number | null }, now: number): Promise<ScheduleRecord | null> {
  const [row] = await q<ScheduleRow>(db, "setPaused", [name, paused, next.nextSlotMs, next.nextAtMs, now]);
  return row ? toRecord(row) : null;
}

/** In a transaction. */
export async function removeSchedule(db: Queryable, name: string): Promise<boolean> {
  await q(db, "removeFires", [name]);
  return (await q(db, "remove", [name])).length > 0;
}

export async function dueSchedules(db: Queryable, now: number, limit: number): Promise<ScheduleRecord[]> {
  return (await q<ScheduleRow>(db, "due", [now, limit])).map(toRecord);
}

/** In a transaction: the compare-and-set, one row per (schedule, slot), and the tasks of new fired slots. */
export async function fireSchedule(db: Queryable, fire: ScheduleFire): Promise<ScheduleFireResult> {
  const now = fire.nowMs;
  if (fire.expectNextSlotMs !== undefined) {
    const cas = await q(db, "advance", [fire.name, fire.expectNextSlotMs, fire.nextSlotMs ?? null, fire.nextAtMs ?? null, now, fire.missed]);
    if (cas.length === 0) return { applied: false, created: [] };
  } else if ((await q(db, "lock", [fire.name])).length === 0) {
    return { applied: false, created: [] };
  }
  const created: ScheduleFireResult["created"] = [];
  for (const slot of fire.fires) {
    const taskId = slot.outcome === "fired" && slot.task ? slot.task.taskId : null;
    if ((await q(db, "recordFire", [fire.name, slot.slotKey, slot.slotMs, taskId, slot.outcome, fire.nodeId, now])).length === 0) continue;
    if (taskId === null) {
      await q(db, "skipped", [fire.name, slot.slotMs]);
      continue;
    }
    const batch = new PgBatch(db, now, fire.nodeId);
    await batch.submit([{ ...slot.task!, schedule: { name: fire.name, slotKey: slot.slotKey } }]);
    const outcome = batch.result.submitted[0]!;
    if (outcome.error) throw new Error(outcome.error.message);
    await q(db, "fired", [fire.name, slot.slotMs, outcome.taskId]);
    created.push({ slotKey: slot.slotKey, taskId: outcome.taskId });
  }
  if (created.length > 0) await bumpCounter(db, "schedule_fired_total", created.length);
  const skipped = fire.missed + fire.fires.filter((x) => x.outcome !== "fired").length;
  if (skipped > 0) await bumpCounter(db, "schedule_skipped_total", skipped);
  return { applied: true, created };
}

function toRecord(r: ScheduleRow): ScheduleRecord {
  return {
    name: r.name, cron: r.cron, timezone: r.timezone, spec: JSON.parse(r.spec_json), overlap: r.overlap as ScheduleRecord["overlap"],
    catchUp: r.catch_up as ScheduleRecord["catchUp"], catchUpWindowMs: r.catch_up_window_ms, jitterMs: r.jitter_ms, paused: r.paused,
    nextSlotMs: r.next_slot_ms, nextAtMs: r.next_at_ms, lastSlotMs: r.last_slot_ms, lastTaskId: r.last_task_id,
    firedCount: r.fired_count, skippedCount: r.skipped_count, createdAtMs: r.created_at_ms, updatedAtMs: r.updated_at_ms,
  };
}
