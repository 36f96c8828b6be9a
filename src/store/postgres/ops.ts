import {
  STEP_DURATION_BUCKETS_MS, STEP_STATUSES, TASK_STATUSES, type CancelResult, type KvChange, type KvEntry, type LeaseConflict, type LeaseRef,
  type NodeRecord, type OpsSnapshot, type OwnershipEvent, type PurgeQuery, type PurgeResult, type ReplayResult,
  type NodeHeartbeat, type SettingsChange, type StepStatus, type AuditEntry, type AuditFilter, type TaskRecord, type TaskStatus, type TaskWithSteps,
} from "../types.js";
import type { MembershipUpdate } from "../store.js";
import { toStepRecord, toTaskRecord, type StepRow, type TaskRow } from "../rows.js";
import { countsOf, heartbeatColumns, toAuditEntry, toNodeRecord, type AuditRow, type NodeRow, type SettingsRow } from "../tables.js";
import { statements, type Queryable } from "./db.js";

const OPEN = `('WAITING', 'SCHEDULED', 'QUEUED', 'THROTTLED', 'READY', 'RETRY_WAIT', 'RUNNING')`;

/** Reads and operator actions; the caller provides the transaction where one is needed. */
const SQL = {
  getTask: `SELECT * FROM tasks WHERE task_id = $1`,
  stepsOfTask: `SELECT s.*, i.input_json, o.output_json FROM steps s
      JOIN step_inputs i ON i.step_row_id = s.id LEFT JOIN step_outputs o ON o.step_row_id = s.id
    WHERE s.task_id = $1 ORDER BY s.id`,
  edgesOfTask: `SELECT from_step, to_step FROM edges WHERE task_id = $1 ORDER BY from_step COLLATE "C", to_step COLLATE "C"`,
  taskByKey: `SELECT task_id FROM tasks WHERE idempotency_key = $1`,
  listTasks: `SELECT *, COUNT(*) OVER () AS total FROM tasks WHERE ($1::text IS NULL OR status = $1) ORDER BY created_at_ms DESC, task_id COLLATE "C" LIMIT $2 OFFSET $3`,
  countTasks: `SELECT COUNT(*)::bigint AS n FROM tasks WHERE ($1::text IS NULL OR status = $1)`,
  taskStatuses: `SELECT task_id, status FROM tasks WHERE task_id = ANY($1::text[])`,
  conflicts: `SELECT * FROM lease_conflicts WHERE at_ms >= $1 ORDER BY at_ms DESC, id DESC LIMIT $2`,
  counters: `SELECT name, value FROM counters`,
  bumpCounters: `INSERT INTO counters (name, value) SELECT * FROM unnest($1::text[], $2::bigint[])
    ON CONFLICT (name) DO UPDATE SET value = counters.value + excluded.value`,

  lockTask: `SELECT status, replays FROM tasks WHERE task_id = $1 FOR UPDATE`,
  runningOf: `SELECT id, task_id, step_id, lease_epoch FROM steps WHERE task_id = $1 AND status = 'RUNNING'`,
  cancelHard: `UPDATE steps SET status = 'CANCELLED', finished_at_ms = $2, lease_expires_at_ms = NULL,
      lease_epoch = CASE WHEN status = 'RUNNING' THEN lease_epoch + 1 ELSE lease_epoch END
    WHERE task_id = $1 AND status IN ${OPEN} RETURNING step_id`,
  cancelSoft: `UPDATE steps SET status = 'CANCELLED', finished_at_ms = $2, lease_expires_at_ms = NULL
    WHERE task_id = $1 AND status IN ('WAITING', 'SCHEDULED', 'QUEUED', 'THROTTLED', 'READY', 'RETRY_WAIT') RETURNING step_id`,
  setCancelReason: `UPDATE tasks SET cancel_reason = COALESCE(cancel_reason, $2) WHERE task_id = $1`,
  purgeDedupe: `DELETE FROM dedupe_keys WHERE expires_at_ms < $1 RETURNING 1`,
  schedules: `SELECT COUNT(*)::bigint AS n, COUNT(*) FILTER (WHERE paused)::bigint AS paused FROM schedules`,
  openWithDeadline: `SELECT COUNT(*)::bigint AS n FROM tasks WHERE deadline_at_ms IS NOT NULL AND status IN ('PENDING', 'RUNNING')`,
  cancelledByReason: `SELECT cancel_reason AS reason, COUNT(*)::bigint AS n FROM tasks WHERE status = 'CANCELLED' AND cancel_reason IS NOT NULL GROUP BY cancel_reason`,
  closeCancelled: `UPDATE tasks SET steps_open = steps_open - $2, cancelled_count = cancelled_count + $2, updated_at_ms = $3
    WHERE task_id = $1 RETURNING steps_open`,
  finishCancelled: `UPDATE tasks SET status = 'CANCELLED', finished_at_ms = $2, updated_at_ms = $2
    WHERE task_id = $1 AND status IN ('PENDING', 'RUNNING') RETURNING status`,
  replayDead: `UPDATE steps SET status = CASE WHEN concurrency_key IS NULL THEN 'READY' ELSE 'QUEUED' END, attempt = 0, replays = replays + 1, ready_at_ms = $2,
      lease_owner = NULL, lease_epoch = lease_epoch + 1, lease_expires_at_ms = NULL, started_at_ms = NULL, finished_at_ms = NULL
    WHERE task_id = $1 AND status = 'DEAD_LETTER' RETURNING step_id`,
  replayBlocked: `WITH open AS (SELECT e.to_step, COUNT(*) FILTER (WHERE d.status <> 'SUCCESS') AS n FROM edges e
        JOIN steps d ON d.task_id = e.task_id AND d.step_id = e.from_step WHERE e.task_id = $1 GROUP BY e.to_step)
    UPDATE steps SET replays = replays + 1, attempt = 0, finished_at_ms = NULL, started_at_ms = NULL,
      lease_owner = NULL, lease_expires_at_ms = NULL, error_json = NULL, ready_at_ms = $2,
      deps_open = COALESCE((SELECT n FROM open WHERE open.to_step = steps.step_id), 0),
      status = CASE WHEN COALESCE((SELECT n FROM open WHERE open.to_step = steps.step_id), 0) = 0 THEN 'READY' ELSE 'WAITING' END
    WHERE task_id = $1 AND status IN ('SKIPPED', 'CANCELLED') RETURNING step_id`,
  reopenTask: `UPDATE tasks SET status = 'RUNNING', replays = replays + 1, dead_count = 0, cancelled_count = 0,
      steps_open = (SELECT COUNT(*) FROM steps WHERE task_id = $1 AND status IN ${OPEN}), finished_at_ms = NULL, updated_at_ms = $2
    WHERE task_id = $1 RETURNING replays`,

  /** Rows of tasks the store does not hold (an import cut short), in one statement. */
  removeOrphans: `WITH i AS (DELETE FROM step_inputs WHERE NOT EXISTS (SELECT 1 FROM steps s JOIN tasks t ON t.task_id = s.task_id WHERE s.id = step_inputs.step_row_id) RETURNING 1),
    o AS (DELETE FROM step_outputs WHERE NOT EXISTS (SELECT 1 FROM steps s JOIN tasks t ON t.task_id = s.task_id WHERE s.id = step_outputs.step_row_id) RETURNING 1),
    e AS (DELETE FROM edges WHERE NOT EXISTS (SELECT 1 FROM tasks t WHERE t.task_id = edges.task_id) RETURNING 1),
    s AS (DELETE FROM steps WHERE NOT EXISTS (SELECT 1 FROM tasks t WHERE t.task_id = steps.task_id) RETURNING 1)
    SELECT (SELECT COUNT(*) FROM i) + (SELECT COUNT(*) FROM o) + (SELECT COUNT(*) FROM e) + (SELECT COUNT(*) FROM s) AS n`,
  purgeTasks: `WITH t AS (SELECT task_id FROM tasks WHERE status = ANY($1::text[]) AND finished_at_ms < $2
      AND ($3::text IS NULL OR left(name, char_length($3::text)) = $3::text)),
    s AS (SELECT id FROM steps WHERE task_id IN (SELECT task_id FROM t)),
    d1 AS (DELETE FROM edges WHERE task_id IN (SELECT task_id FROM t)),
    d2 AS (DELETE FROM kv WHERE namespace IN (SELECT task_id FROM t)),
    d3 AS (DELETE FROM step_inputs WHERE step_row_id IN (SELECT id FROM s)),
    d4 AS (DELETE FROM step_outputs WHERE step_row_id IN (SELECT id FROM s)),
    d5 AS (DELETE FROM steps WHERE id IN (SELECT id FROM s))
    DELETE FROM tasks WHERE task_id IN (SELECT task_id FROM t) RETURNING 1`,
  forgetKeys: `UPDATE tasks SET idempotency_key = NULL WHERE idempotency_key IS NOT NULL AND created_at_ms < $1
    AND ($2::text IS NULL OR left(name, char_length($2::text)) = $2::text) RETURNING 1`,

  taskCounts: `SELECT status, COUNT(*)::bigint AS n FROM tasks GROUP BY status`,
  stepCounts: `SELECT status, COUNT(*)::bigint AS n FROM steps GROUP BY status`,
  oldestReady: `SELECT MIN(ready_at_ms) AS at FROM steps WHERE status = 'READY'`,
  recentDurations: `SELECT finished_at_ms - started_at_ms AS d FROM steps
    WHERE status IN ('SUCCESS', 'DEAD_LETTER') AND finished_at_ms >= $1 AND started_at_ms IS NOT NULL
    ORDER BY finished_at_ms DESC LIMIT 10000`,
  durationBuckets: `SELECT bucket, COUNT(*)::bigint AS n, SUM(d)::bigint AS total FROM (
      SELECT finished_at_ms - started_at_ms AS d,
        (SELECT COUNT(*) FROM unnest($1::bigint[]) b WHERE b < finished_at_ms - started_at_ms)::int AS bucket
      FROM steps WHERE status IN ('SUCCESS', 'DEAD_LETTER') AND started_at_ms IS NOT NULL AND finished_at_ms IS NOT NULL) x
    GROUP BY bucket`,
  nodesByStatus: `SELECT CASE WHEN state = 'stopped' THEN 'STOPPED' ELSE membership END AS status, COUNT(*) AS n FROM nodes GROUP BY 1`,
  runningByOwner: `SELECT COALESCE(CASE WHEN n.state = 'stopped' THEN 'STOPPED' ELSE n.membership END, 'UNKNOWN') AS status, COUNT(*) AS n FROM steps s LEFT JOIN nodes n ON n.node_id = s.lease_owner WHERE s.status = 'RUNNING' GROUP BY 1`,
  readyByAgent: `SELECT agent, COUNT(*)::bigint AS n, MIN(ready_at_ms) AS at FROM steps WHERE status = 'READY' GROUP BY agent ORDER BY agent COLLATE "C"`,
  deadLastHour: `SELECT COUNT(*)::bigint AS n FROM tasks WHERE status = 'DEAD_LETTER' AND finished_at_ms >= $1`,

  upsertNode: `INSERT INTO nodes (node_id, hostname, pid, state, started_at_ms, last_heartbeat_ms, membership_since_ms,
      agents_json, cpu_load, mem_load, running, capacity)
      VALUES ($1, $2, $3, 'running', $4, $4, $4, $5, $6, $7, $8, $9)
    ON CONFLICT (node_id) DO UPDATE SET hostname = excluded.hostname, pid = excluded.pid, state = 'running',
      started_at_ms = CASE WHEN nodes.state = 'running' AND nodes.pid = excluded.pid THEN nodes.started_at_ms ELSE excluded.started_at_ms END,
      last_heartbeat_ms = excluded.last_heartbeat_ms, stopped_at_ms = NULL,
      agents_json = COALESCE(excluded.agents_json, nodes.agents_json), cpu_load = COALESCE(excluded.cpu_load, nodes.cpu_load),
      mem_load = COALESCE(excluded.mem_load, nodes.mem_load), running = COALESCE(excluded.running, nodes.running),
      capacity = COALESCE(excluded.capacity, nodes.capacity)`,
  stopNode: `UPDATE nodes SET state = 'stopped', stopped_at_ms = $3, last_heartbeat_ms = $3 WHERE node_id = $1 AND pid = $2`,
  nodes: `SELECT * FROM nodes ORDER BY node_id COLLATE "C"`,
  setMemberships: `UPDATE nodes SET membership = u.status, membership_since_ms = u.since
    FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::bigint[]) AS u(node_id, status, since, from_status, from_since)
    WHERE nodes.node_id = u.node_id AND nodes.membership = u.from_status AND nodes.membership_since_ms = u.from_since RETURNING 1`,
  pruneNodes: `DELETE FROM nodes WHERE node_id IN (
    SELECT node_id FROM nodes WHERE membership = 'DEAD' AND last_heartbeat_ms < $1 ORDER BY last_heartbeat_ms LIMIT $2) RETURNING 1`,
  ownershipEvents: `SELECT at_ms, kind, task_id, step_id, node_id, from_node, details_json, id FROM ownership_events WHERE at_ms >= $1
    UNION ALL SELECT at_ms, 'lease-conflict', task_id, step_id, node_id, NULL,
      json_build_object('operation', operation, 'expectedLeaseEpoch', expected_epoch, 'actualLeaseEpoch', actual_epoch)::text, id
    FROM lease_conflicts WHERE at_ms >= $1
    ORDER BY 1 DESC, 8 DESC LIMIT $2`,
  clusterEpoch: `SELECT value FROM counters WHERE name = 'cluster_epoch'`,
  bumpEpoch: `INSERT INTO counters (name, value) VALUES ('cluster_epoch', 1) ON CONFLICT (name) DO UPDATE SET value = counters.value + 1 RETURNING value`,
  fenceRunning: `UPDATE steps SET status = 'READY', ready_at_ms = $1, lease_owner = NULL, lease_epoch = lease_epoch + 1,
      lease_expires_at_ms = NULL, attempt = attempt - 1
    WHERE status = 'RUNNING' RETURNING task_id, step_id`,

  meta: `SELECT value FROM store_meta WHERE name = $1`,
  setMeta: `INSERT INTO store_meta (name, value) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = excluded.value`,
  addSettingsChange: `INSERT INTO settings_history (entry_id, at_ms, node_id, actor, result, changed_fields_json, error)
    VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING`,
  settingsHistory: `SELECT * FROM settings_history ORDER BY at_ms DESC, entry_id COLLATE "C" DESC LIMIT $1`,
  appendAudit: `INSERT INTO audit_records (at_ms, node_id, action, actor, resource, result, trace_id, span_id, task_id, step_id, details_json)
    SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[],
      $10::text[], $11::text[])`,
  auditEntries: `SELECT * FROM audit_records WHERE ($1::text IS NULL OR task_id = $1) AND ($2::text IS NULL OR action = $2)
      AND ($3::bigint IS NULL OR at_ms >= $3) AND ($4::bigint IS NULL OR at_ms <= $4)
    ORDER BY at_ms DESC, id DESC LIMIT $5`,

  kvGet: `SELECT * FROM kv WHERE namespace = $1 AND key = $2 AND NOT deleted`,
  kvList: `SELECT * FROM kv WHERE namespace = $1 AND NOT deleted AND starts_with(key, $2) ORDER BY key COLLATE "C" LIMIT $3`,
  kvChanges: `SELECT * FROM kv WHERE namespace = $1 AND version > $2 ORDER BY version, key COLLATE "C" LIMIT $3`,
} as const;

const q = statements("o", SQL);

interface KvRow { namespace: string; key: string; value_json: string | null; deleted: boolean; version: number; updated_at_ms: number; writer: string }

export async function getTask(db: Queryable, taskId: string): Promise<TaskWithSteps | null> {
  const [row] = await q<TaskRow>(db, "getTask", [taskId]);
  if (!row) return null;
  const steps = (await q<StepRow>(db, "stepsOfTask", [taskId])).map(toStepRecord);
  const edges = (await q<{ from_step: string; to_step: string }>(db, "edgesOfTask", [taskId])).map((e) => [e.from_step, e.to_step] as [string, string]);
  return { ...toTaskRecord(row), steps, edges };
}

export async function findTaskByIdempotencyKey(db: Queryable, key: string): Promise<string | null> {
  return (await q<{ task_id: string }>(db, "taskByKey", [key]))[0]?.task_id ?? null;
}

export async function listTasks(db: Queryable, query: { status?: TaskStatus; limit: number; offset: number }): Promise<{ tasks: TaskRecord[]; total: number }> {
  const rows = await q<TaskRow & { total: number }>(db, "listTasks", [query.status ?? null, query.limit, query.offset]);
  const total = rows.length > 0 ? rows[0]!.total : (await q<{ n: number }>(db, "countTasks", [query.status ?? null]))[0]!.n;
  return { tasks: rows.map(toTaskRecord), total };
}

export async function taskStatuses(db: Queryable, taskIds: readonly string[]): Promise<Map<string, TaskStatus>> {
  const out = new Map<string, TaskStatus>();
  for (const r of await q<{ task_id: string; status: TaskStatus }>(db, "taskStatuses", [taskIds])) out.set(r.task_id, r.status);
  return out;
}

export async function listLeaseConflicts(db: Queryable, query: { sinceMs: number; limit: number }): Promise<LeaseConflict[]> {
  return (await q<{ task_id: string; step_id: string; expected_epoch: number; actual_epoch: number | null; node_id: string; operation: string; at_ms: number }>(
    db, "conflicts", [query.sinceMs, query.limit])).map((r) => ({
    taskId: r.task_id, stepId: r.step_id, expectedLeaseEpoch: r.expected_epoch, actualLeaseEpoch: r.actual_epoch,
    nodeId: r.node_id, operation: r.operation, atMs: r.at_ms,
  }));
}

/** Adds to several counters (creating them) in one statement. */
export async function bumpCounters(db: Queryable, by: ReadonlyMap<string, number>): Promise<void> {
  await q(db, "bumpCounters", [[...by.keys()], [...by.values()]]);
}

export async function counters(db: Queryable): Promise<Record<string, number>> {
  const out: Record<string, number> = Object.create(null);
  for (const r of await q<{ name: string; value: number }>(db, "counters")) out[r.name] = r.value;
  return { ...out };
}

/** In a transaction. */
export async function cancelTask(db: Queryable, taskId: string, mode: "hard" | "soft", now: number, reason: string | null = null): Promise<CancelResult | null> {
  const [task] = await q<{ status: TaskStatus }>(db, "lockTask", [taskId]);
  if (!task) return null;
  if (task.status === "SUCCESS" || task.status === "DEAD_LETTER" || task.status === "CANCELLED") return { status: task.status, cancelledSteps: [], cancelledRunning: [] };
  const cancelledRunning: LeaseRef[] = mode === "hard"
    ? (await q<{ id: number; task_id: string; step_id: string; lease_epoch: number }>(db, "runningOf", [taskId]))
      .map((r) => ({ stepKey: String(r.id), taskId: r.task_id, stepId: r.step_id, leaseEpoch: r.lease_epoch }))
    : [];
  const cancelledSteps = (await q<{ step_id: string }>(db, mode === "hard" ? "cancelHard" : "cancelSoft", [taskId, now])).map((r) => r.step_id);
  if (reason !== null) await q(db, "setCancelReason", [taskId, reason]);
  const [{ steps_open: open }] = (await q<{ steps_open: number }>(db, "closeCancelled", [taskId, cancelledSteps.length, now])) as [{ steps_open: number }];
  let status: TaskStatus = task.status;
  if (mode === "hard" || open === 0) status = (await q<{ status: TaskStatus }>(db, "finishCancelled", [taskId, now]))[0]?.status ?? status;
  return { status, cancelledSteps, cancelledRunning };
}

/** In a transaction. */
export async function replayTask(db: Queryable, taskId: string, now: number): Promise<ReplayResult | null> {
  const [task] = await q<{ status: TaskStatus; replays: number }>(db, "lockTask", [taskId]);
  if (!task) return null;
  if (task.status !== "DEAD_LETTER") return { replayed: false, status: task.status, steps: [], round: task.replays };
  const dead = (await q<{ step_id: string }>(db, "replayDead", [taskId, now])).map((r) => r.step_id);
  const blocked = (await q<{ step_id: string }>(db, "replayBlocked", [taskId, now])).map((r) => r.step_id);
  const [{ replays }] = (await q<{ replays: number }>(db, "reopenTask", [taskId, now])) as [{ replays: number }];
  return { replayed: true, status: "RUNNING", steps: [...dead, ...blocked], round: replays };
}

/** In a transaction. */
export async function purge(db: Queryable, query: PurgeQuery): Promise<PurgeResult> {
  const prefix = query.namePrefix ?? null;
  return {
    finishedTasks: (await q(db, "purgeTasks", [["SUCCESS", "CANCELLED"], query.finishedBeforeMs, prefix])).length,
    deadLetters: (await q(db, "purgeTasks", [["DEAD_LETTER"], query.deadBeforeMs, prefix])).length,
    idempotencyKeys: (await q(db, "forgetKeys", [query.idempotencyBeforeMs, prefix])).length +
      (prefix === null ? (await q(db, "purgeDedupe", [query.idempotencyBeforeMs])).length : 0),
  };
}

export async function removeOrphanRows(db: Queryable): Promise<number> {
  return Number((await q<{ n: number }>(db, "removeOrphans"))[0]!.n);
}

/** In a read-only repeatable-read transaction (one snapshot). */
export async function snapshot(db: Queryable, now: number): Promise<OpsSnapshot> {
  const tasks = Object.fromEntries(TASK_STATUSES.map((s) => [s, 0])) as Record<TaskStatus, number>;
  for (const r of await q<{ status: TaskStatus; n: number }>(db, "taskCounts")) tasks[r.status] = r.n;
  const steps = Object.fromEntries(STEP_STATUSES.map((s) => [s, 0])) as Record<StepStatus, number>;
  for (const r of await q<{ status: StepStatus; n: number }>(db, "stepCounts")) steps[r.status] = r.n;
  const durations = (await q<{ d: number }>(db, "recentDurations", [now - 3_600_000])).map((r) => r.d).sort((a, b) => a - b);
  const bounds = [...STEP_DURATION_BUCKETS_MS];
  const buckets = [...bounds, Infinity].map((leMs) => ({ leMs, count: 0 }));
  let sum = 0;
  for (const r of await q<{ bucket: number; n: number; total: number }>(db, "durationBuckets", [bounds])) {
    buckets[r.bucket]!.count = r.n;
    sum += r.total;
  }
  return {
    atMs: now, tasks, steps,
    oldestReadyAtMs: (await q<{ at: number | null }>(db, "oldestReady"))[0]!.at,
    recentStepDurationsMs: durations, stepDurationBuckets: buckets, stepDurationSumMs: sum,
    deadLetteredLastHour: (await q<{ n: number }>(db, "deadLastHour", [now - 3_600_000]))[0]!.n,
    counters: await counters(db),
    readyByAgent: (await q<{ agent: string; n: number; at: number }>(db, "readyByAgent")).map((r) => ({ agent: r.agent, count: r.n, oldestReadyAtMs: r.at })),
    nodesByStatus: countsOf(await q<{ status: string; n: number }>(db, "nodesByStatus")),
    runningByOwnerStatus: countsOf(await q<{ status: string; n: number }>(db, "runningByOwner")),
    flow: await flowFigures(db),
  };
}

async function flowFigures(db: Queryable): Promise<NonNullable<OpsSnapshot["flow"]>> {
  const [sch] = await q<{ n: number; paused: number }>(db, "schedules");
  const cancelledByReason: Record<string, number> = Object.create(null);
  for (const r of await q<{ reason: string; n: number }>(db, "cancelledByReason")) cancelledByReason[r.reason] = r.n;
  return { schedules: sch!.n, schedulesPaused: sch!.paused, openWithDeadline: (await q<{ n: number }>(db, "openWithDeadline"))[0]!.n, cancelledByReason };
}

export async function heartbeatNode(db: Queryable, node: NodeHeartbeat, now: number): Promise<void> {
  const h = heartbeatColumns(node);
  await q(db, "upsertNode", [node.nodeId, node.hostname, node.pid, now, h.agentsJson, h.cpu, h.memory, h.running, h.capacity]);
}

export async function stopNode(db: Queryable, node: { nodeId: string; pid: number }, now: number): Promise<void> {
  await q(db, "stopNode", [node.nodeId, node.pid, now]);
}

export async function listNodes(db: Queryable): Promise<NodeRecord[]> {
  return (await q<NodeRow>(db, "nodes")).map(toNodeRecord);
}

export async function setMemberships(db: Queryable, updates: MembershipUpdate[]): Promise<number> {
  return (await q(db, "setMemberships", [updates.map((u) => u.nodeId), updates.map((u) => u.status), updates.map((u) => u.sinceMs),
    updates.map((u) => u.from.status), updates.map((u) => u.from.sinceMs)])).length;
}

export async function pruneNodes(db: Queryable, olderThanMs: number, limit: number): Promise<number> {
  return (await q(db, "pruneNodes", [olderThanMs, limit])).length;
}

export async function ownershipEvents(db: Queryable, sinceMs: number, limit: number): Promise<OwnershipEvent[]> {
  return (await q<{ at_ms: number; kind: string; task_id: string | null; step_id: string | null; node_id: string; from_node: string | null; details_json: string }>(
    db, "ownershipEvents", [sinceMs, limit])).map((r) => ({
    atMs: r.at_ms, kind: r.kind, taskId: r.task_id, stepId: r.step_id, nodeId: r.node_id, fromNode: r.from_node,
    details: JSON.parse(r.details_json) as Record<string, unknown>,
  }));
}

export async function clusterEpoch(db: Queryable): Promise<number> {
  return (await q<{ value: number }>(db, "clusterEpoch"))[0]?.value ?? 0;
}

/** In a transaction. */
export async function bumpClusterEpoch(db: Queryable, now: number): Promise<{ clusterEpoch: number; fencedSteps: { taskId: string; stepId: string }[] }> {
  const [{ value }] = (await q<{ value: number }>(db, "bumpEpoch")) as [{ value: number }];
  const fencedSteps = (await q<{ task_id: string; step_id: string }>(db, "fenceRunning", [now])).map((r) => ({ taskId: r.task_id, stepId: r.step_id }));
  return { clusterEpoch: value, fencedSteps };
}

export async function meta(db: Queryable, name: string): Promise<string | null> {
  return (await q<{ value: string }>(db, "meta", [name]))[0]?.value ?? null;
}

export async function setMeta(db: Queryable, name: string, value: string): Promise<void> {
  await q(db, "setMeta", [name, value]);
}

export async function addSettingsChange(db: Queryable, c: SettingsChange): Promise<void> {
  await q(db, "addSettingsChange", [c.entryId, c.atMs, c.nodeId, c.actor, c.result, JSON.stringify(c.changedFields), c.error]);
}

export async function settingsHistory(db: Queryable, limit: number): Promise<SettingsRow[]> {
  return q<SettingsRow>(db, "settingsHistory", [limit]);
}

/** One multi-row insert of every entry (column arrays through unnest). */
export async function appendAudit(db: Queryable, entries: readonly AuditEntry[]): Promise<void> {
  if (entries.length === 0) return;
  await q(db, "appendAudit", [
    entries.map((e) => e.atMs), entries.map((e) => e.nodeId), entries.map((e) => e.action), entries.map((e) => e.actor),
    entries.map((e) => e.resource), entries.map((e) => e.result), entries.map((e) => e.traceId), entries.map((e) => e.spanId),
    entries.map((e) => e.taskId), entries.map((e) => e.stepId), entries.map((e) => e.detailsJson),
  ]);
}

export async function auditEntries(db: Queryable, f: AuditFilter): Promise<AuditEntry[]> {
  return (await q<AuditRow>(db, "auditEntries", [f.taskId ?? null, f.action ?? null, f.fromMs ?? null, f.toMs ?? null, f.limit])).map(toAuditEntry);
}

export async function kvGet(db: Queryable, namespace: string, key: string): Promise<KvEntry | null> {
  const [row] = await q<KvRow>(db, "kvGet", [namespace, key]);
  return row ? toEntry(row) : null;
}

export async function kvList(db: Queryable, namespace: string, prefix: string, limit: number): Promise<KvEntry[]> {
  return (await q<KvRow>(db, "kvList", [namespace, prefix, limit])).map(toEntry);
}

export async function kvChanges(db: Queryable, namespace: string, afterVersion: number, limit: number): Promise<KvChange[]> {
  return (await q<KvRow>(db, "kvChanges", [namespace, afterVersion, limit])).map((r) => ({ ...toEntry(r), namespace: r.namespace, deleted: r.deleted }));
}

function toEntry(r: KvRow): KvEntry {
  return { key: r.key, value: r.value_json === null ? null : JSON.parse(r.value_json), version: r.version, updatedAtMs: r.updated_at_ms, writer: r.writer };
}
