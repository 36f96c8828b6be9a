import type Database from "better-sqlite3";
import type { ScheduleDefinition, ScheduleFire, ScheduleFireResult, ScheduleRecord } from "../types.js";
import { insertTask } from "./commit.js";
import type { FlowStatements } from "./flow.js";
import type { Statements } from "./statements.js";

interface ScheduleRow {
  name: string; cron: string; timezone: string | null; spec_json: string; overlap: string; catch_up: string;
  catch_up_window_ms: number | null; jitter_ms: number; paused: number; next_slot_ms: number | null; next_at_ms: number | null;
  last_slot_ms: number | null; last_task_id: string | null; fired_count: number; skipped_count: number;
  created_at_ms: number; updated_at_ms: number;
}

/** Schedules and deadlines: each operation one synchronous transaction. */
export interface SqliteSchedules {
  dueDeadlines(now: number, limit: number): string[];
  put(def: ScheduleDefinition, now: number): { schedule: ScheduleRecord; replaced: boolean };
  get(name: string): ScheduleRecord | null;
  list(): ScheduleRecord[];
  setPaused(name: string, paused: boolean, next: { nextSlotMs: number | null; nextAtMs: number | null }, now: number): ScheduleRecord | null;
  remove(name: string): boolean;
  due(now: number, limit: number): ScheduleRecord[];
  fire(fire: ScheduleFire): ScheduleFireResult;
}

export function prepareSchedules(db: Database.Database, s: Statements, f: FlowStatements): SqliteSchedules {
  const q = {
    // Without the hint the planner (no ANALYZE statistics) reads every open task through tasks_status_created.
    dueDeadlines: db.prepare(`SELECT task_id FROM tasks INDEXED BY tasks_deadline WHERE deadline_at_ms <= ? AND deadline_at_ms IS NOT NULL
      AND status IN ('PENDING', 'RUNNING') ORDER BY deadline_at_ms LIMIT ?`),
    get: db.prepare(`SELECT * FROM schedules WHERE name = ?`),
    list: db.prepare(`SELECT * FROM schedules ORDER BY name`),
    insert: db.prepare(`INSERT INTO schedules (name, cron, timezone, spec_json, overlap, catch_up, catch_up_window_ms, jitter_ms, paused,
        next_slot_ms, next_at_ms, created_at_ms, updated_at_ms)
      VALUES (@name, @cron, @timezone, @specJson, @overlap, @catchUp, @catchUpWindowMs, @jitterMs, @paused, @nextSlotMs, @nextAtMs, @now, @now)
      ON CONFLICT (name) DO UPDATE SET cron = excluded.cron, timezone = excluded.timezone, spec_json = excluded.spec_json,
        overlap = excluded.overlap, catch_up = excluded.catch_up, catch_up_window_ms = excluded.catch_up_window_ms,
        jitter_ms = excluded.jitter_ms, paused = excluded.paused, next_slot_ms = excluded.next_slot_ms, next_at_ms = excluded.next_at_ms,
        updated_at_ms = excluded.updated_at_ms`),
    setPaused: db.prepare(`UPDATE schedules SET paused = @paused, next_slot_ms = @nextSlotMs, next_at_ms = @nextAtMs, updated_at_ms = @now
      WHERE name = @name`),
    remove: db.prepare(`DELETE FROM schedules WHERE name = ?`),
    removeFires: db.prepare(`DELETE FROM schedule_fires WHERE name = ?`),
    due: db.prepare(`SELECT * FROM schedules WHERE next_at_ms <= ? AND paused = 0 ORDER BY next_at_ms LIMIT ?`),
    advance: db.prepare(`UPDATE schedules SET next_slot_ms = @nextSlotMs, next_at_ms = @nextAtMs, updated_at_ms = @now,
        skipped_count = skipped_count + @missed
      WHERE name = @name AND next_slot_ms IS @expect`),
    exists: db.prepare(`SELECT 1 FROM schedules WHERE name = ?`),
    recordFire: db.prepare(`INSERT INTO schedule_fires (name, slot_key, slot_ms, task_id, outcome, node_id, at_ms)
      VALUES (@name, @slotKey, @slotMs, @taskId, @outcome, @nodeId, @now) ON CONFLICT (name, slot_key) DO NOTHING`),
    fired: db.prepare(`UPDATE schedules SET last_slot_ms = @slotMs, last_task_id = @taskId, fired_count = fired_count + 1 WHERE name = @name`),
    skipped: db.prepare(`UPDATE schedules SET last_slot_ms = @slotMs, skipped_count = skipped_count + 1 WHERE name = @name`),
  };
  const write = <A extends unknown[], R>(fn: (...args: A) => R) => {
    const t = db.transaction(fn);
    return (...args: A): R => t.immediate(...args);
  };
  const get = (name: string) => {
    const row = q.get.get(name) as ScheduleRow | undefined;
    return row ? toRecord(row) : null;
  };
  return {
    dueDeadlines: (now, limit) => (q.dueDeadlines.all(now, limit) as { task_id: string }[]).map((r) => r.task_id),
    put: write((def: ScheduleDefinition, now: number) => {
      const replaced = q.exists.get(def.name) !== undefined;
      q.insert.run({
        name: def.name, cron: def.cron, timezone: def.timezone, specJson: JSON.stringify(def.spec), overlap: def.overlap, catchUp: def.catchUp,
        catchUpWindowMs: def.catchUpWindowMs, jitterMs: def.jitterMs, paused: def.paused ? 1 : 0, nextSlotMs: def.nextSlotMs, nextAtMs: def.nextAtMs, now,
      });
      return { schedule: get(def.name)!, replaced };
    }),
    get,
    list: () => (q.list.all() as ScheduleRow[]).map(toRecord),
    setPaused: write((name: string, paused: boolean, next: { nextSlotMs: number | null; nextAtMs: number | null }, now: number) => {
      if (q.setPaused.run({ name, paused: paused ? 1 : 0, ...next, now }).changes === 0) return null;
      return get(name);
    }),
    remove: write((name: string) => {
      q.removeFires.run(name);
      return q.remove.run(name).changes > 0;
    }),
    due: (now, limit) => (q.due.all(now, limit) as ScheduleRow[]).map(toRecord),
    fire: write((fire: ScheduleFire): ScheduleFireResult => {
      const now = fire.nowMs;
      if (fire.expectNextSlotMs !== undefined) {
        const cas = q.advance.run({
          name: fire.name, expect: fire.expectNextSlotMs, nextSlotMs: fire.nextSlotMs ?? null, nextAtMs: fire.nextAtMs ?? null, missed: fire.missed, now,
        });
        if (cas.changes === 0) return { applied: false, created: [] };
      } else if (q.exists.get(fire.name) === undefined) {
        return { applied: false, created: [] };
      }
      const created: ScheduleFireResult["created"] = [];
      for (const slot of fire.fires) {
        const taskId = slot.outcome === "fired" && slot.task ? slot.task.taskId : null;
        const fresh = q.recordFire.run({ name: fire.name, slotKey: slot.slotKey, slotMs: slot.slotMs, taskId, outcome: slot.outcome, nodeId: fire.nodeId, now });
        if (fresh.changes === 0) continue;
        if (taskId === null) {
          q.skipped.run({ name: fire.name, slotMs: slot.slotMs });
          continue;
        }
        const outcome = insertTask(s, f, { ...slot.task!, schedule: { name: fire.name, slotKey: slot.slotKey } }, now);
        q.fired.run({ name: fire.name, slotMs: slot.slotMs, taskId: outcome.taskId });
        created.push({ slotKey: slot.slotKey, taskId: outcome.taskId });
      }
      if (created.length > 0) s.bumpCounter.run("schedule_fired_total", created.length);
      const skipped = fire.missed + fire.fires.filter((x) => x.outcome !== "fired").length;
      if (skipped > 0) s.bumpCounter.run("schedule_skipped_total", skipped);
      return { applied: true, created };
    }),
  };
}

function toRecord(r: ScheduleRow): ScheduleRecord {
  return {
    name: r.name, cron: r.cron, timezone: r.timezone, spec: JSON.parse(r.spec_json), overlap: r.overlap as ScheduleRecord["overlap"],
    catchUp: r.catch_up as ScheduleRecord["catchUp"], catchUpWindowMs: r.catch_up_window_ms, jitterMs: r.jitter_ms, paused: r.paused === 1,
    nextSlotMs: r.next_slot_ms, nextAtMs: r.next_at_ms, lastSlotMs: r.last_slot_ms, lastTaskId: r.last_task_id,
    firedCount: r.fired_count, skippedCount: r.skipped_count, createdAtMs: r.created_at_ms, updatedAtMs: r.updated_at_ms,
  };
}
