import type Database from "better-sqlite3";
import {
  STEP_DURATION_BUCKETS_MS, STEP_STATUSES, TASK_STATUSES, type CancelResult, type LeaseRef, type NodeRecord, type OpsSnapshot,
  type PurgeQuery, type PurgeResult, type ReplayResult, type StepStatus, type TaskStatus, type KvEntry, type KvChange, type OwnershipEvent,
  type SettingsChange, type NodeHeartbeat, type AuditEntry, type AuditFilter,
} from "../types.js";
import { countsOf, heartbeatColumns, toAuditEntry, toNodeRecord, toSettingsChange, type AuditRow, type NodeRow, type SettingsRow } from "../tables.js";

interface KvRow { namespace: string; key: string; value_json: string | null; deleted: number; version: number; updated_at_ms: number; writer: string }

const OPEN = `('WAITING', 'SCHEDULED', 'QUEUED', 'THROTTLED', 'READY', 'RETRY_WAIT', 'RUNNING')`;

/** Operator actions and read-outs, each one synchronous transaction. */
export interface SqliteOps {
  cancelTask(taskId: string, mode: "hard" | "soft", now: number, reason: string | null): CancelResult | null;
  replayTask(taskId: string, now: number): ReplayResult | null;
  purge(query: PurgeQuery): PurgeResult;
  removeOrphanRows(): number;
  snapshot(now: number): OpsSnapshot;
  heartbeatNode(node: NodeHeartbeat, now: number): void;
  stopNode(node: { nodeId: string; pid: number }, now: number): void;
  nodes(): NodeRecord[];
  kvGet(namespace: string, key: string): KvEntry | null;
  kvList(namespace: string, prefix: string, limit: number): KvEntry[];
  kvChanges(namespace: string, afterVersion: number, limit: number): KvChange[];
  setMemberships(updates: { nodeId: string; from: { status: string; sinceMs: number }; status: string; sinceMs: number }[]): number;
  expireLeasesOf(nodeIds: string[], limit: number): number;
  pruneNodes(olderThanMs: number, limit: number): number;
  ownershipEvents(sinceMs: number, limit: number): OwnershipEvent[];
  clusterEpoch(): number;
  bumpClusterEpoch(now: number): { clusterEpoch: number; fencedSteps: { taskId: string; stepId: string }[] };
  meta(name: string): string | null;
  setMeta(name: string, value: string): void;
  addSettingsChange(change: SettingsChange): void;
  settingsHistory(limit: number): SettingsChange[];
  appendAudit(entries: readonly AuditEntry[]): void;
  auditEntries(filter: AuditFilter): AuditEntry[];
  /** Adds `by` to a counter (creating it). The caller brings the transaction. */
  bumpCounter(name: string, by: number): void;
}

export function prepareOps(db: Database.Database): SqliteOps {
  const q = {
    taskStatus: db.prepare(`SELECT status, replays FROM tasks WHERE task_id = ?`),
    runningOf: db.prepare(`SELECT id, task_id, step_id, lease_epoch FROM steps WHERE task_id = ? AND status = 'RUNNING'`),
    cancelSteps: (statuses: string) => db.prepare(`UPDATE steps SET status = 'CANCELLED', finished_at_ms = @now, lease_expires_at_ms = NULL,
        lease_epoch = CASE WHEN status = 'RUNNING' THEN lease_epoch + 1 ELSE lease_epoch END
      WHERE task_id = @taskId AND status IN ${statuses} RETURNING step_id`),
    closeCancelled: db.prepare(`UPDATE tasks SET steps_open = steps_open - @n, cancelled_count = cancelled_count + @n, updated_at_ms = @now
      WHERE task_id = @taskId RETURNING steps_open`),
    finishCancelled: db.prepare(`UPDATE tasks SET status = 'CANCELLED', finished_at_ms = @now, updated_at_ms = @now
      WHERE task_id = @taskId AND status IN ('PENDING', 'RUNNING')`),
    replayDead: db.prepare(`UPDATE steps SET status = CASE WHEN concurrency_key IS NULL THEN 'READY' ELSE 'QUEUED' END, attempt = 0, replays = replays + 1, ready_at_ms = @now,
        lease_owner = NULL, lease_epoch = lease_epoch + 1, lease_expires_at_ms = NULL, started_at_ms = NULL, finished_at_ms = NULL
      WHERE task_id = @taskId AND status = 'DEAD_LETTER' RETURNING step_id`),
    replayBlocked: db.prepare(`UPDATE steps SET replays = replays + 1, attempt = 0, finished_at_ms = NULL, started_at_ms = NULL,
        lease_owner = NULL, lease_expires_at_ms = NULL, error_json = NULL, ready_at_ms = @now,
        deps_open = (SELECT COUNT(*) FROM edges e JOIN steps d ON d.task_id = e.task_id AND d.step_id = e.from_step
          WHERE e.task_id = steps.task_id AND e.to_step = steps.step_id AND d.status <> 'SUCCESS'),
        status = CASE WHEN (SELECT COUNT(*) FROM edges e JOIN steps d ON d.task_id = e.task_id AND d.step_id = e.from_step
          WHERE e.task_id = steps.task_id AND e.to_step = steps.step_id AND d.status <> 'SUCCESS') = 0 THEN 'READY' ELSE 'WAITING' END
      WHERE task_id = @taskId AND status IN ('SKIPPED', 'CANCELLED') RETURNING step_id`),
    reopenTask: db.prepare(`UPDATE tasks SET status = 'RUNNING', replays = replays + 1, dead_count = 0, cancelled_count = 0,
        steps_open = (SELECT COUNT(*) FROM steps WHERE task_id = @taskId AND status IN ${OPEN}),
        finished_at_ms = NULL, updated_at_ms = @now
      WHERE task_id = @taskId RETURNING replays`),
    purgeEdges: db.prepare(`DELETE FROM edges WHERE task_id IN (SELECT task_id FROM tasks WHERE status IN (SELECT value FROM json_each(@statuses)) AND finished_at_ms < @before AND (@prefix IS NULL OR substr(name, 1, length(@prefix)) = @prefix))`),
    purgeSteps: db.prepare(`DELETE FROM steps WHERE task_id IN (SELECT task_id FROM tasks WHERE status IN (SELECT value FROM json_each(@statuses)) AND finished_at_ms < @before AND (@prefix IS NULL OR substr(name, 1, length(@prefix)) = @prefix))`),
    purgeInputs: db.prepare(`DELETE FROM step_inputs WHERE step_row_id IN (SELECT s.id FROM steps s JOIN tasks t ON t.task_id = s.task_id
      WHERE t.status IN (SELECT value FROM json_each(@statuses)) AND t.finished_at_ms < @before AND (@prefix IS NULL OR substr(t.name, 1, length(@prefix)) = @prefix))`),
    purgeOutputs: db.prepare(`DELETE FROM step_outputs WHERE step_row_id IN (SELECT s.id FROM steps s JOIN tasks t ON t.task_id = s.task_id
      WHERE t.status IN (SELECT value FROM json_each(@statuses)) AND t.finished_at_ms < @before AND (@prefix IS NULL OR substr(t.name, 1, length(@prefix)) = @prefix))`),
    purgeKv: db.prepare(`DELETE FROM kv WHERE namespace IN (SELECT task_id FROM tasks WHERE status IN (SELECT value FROM json_each(@statuses)) AND finished_at_ms < @before AND (@prefix IS NULL OR substr(name, 1, length(@prefix)) = @prefix))`),
    kvGet: db.prepare(`SELECT * FROM kv WHERE namespace = ? AND key = ? AND deleted = 0`),
    setCancelReason: db.prepare(`UPDATE tasks SET cancel_reason = COALESCE(cancel_reason, ?) WHERE task_id = ?`),
    purgeDedupe: db.prepare(`DELETE FROM dedupe_keys WHERE expires_at_ms < ?`),
    kvList: db.prepare(`SELECT * FROM kv WHERE namespace = ? AND deleted = 0 AND key >= ? AND key < ? ORDER BY key LIMIT ?`),
    kvChanges: db.prepare(`SELECT * FROM kv WHERE namespace = ? AND version > ? ORDER BY version, key LIMIT ?`),
    orphanInputs: db.prepare(`DELETE FROM step_inputs WHERE NOT EXISTS (SELECT 1 FROM steps s JOIN tasks t ON t.task_id = s.task_id WHERE s.id = step_inputs.step_row_id)`),
    orphanOutputs: db.prepare(`DELETE FROM step_outputs WHERE NOT EXISTS (SELECT 1 FROM steps s JOIN tasks t ON t.task_id = s.task_id WHERE s.id = step_outputs.step_row_id)`),
    orphanEdges: db.prepare(`DELETE FROM edges WHERE NOT EXISTS (SELECT 1 FROM tasks t WHERE t.task_id = edges.task_id)`),
    orphanSteps: db.prepare(`DELETE FROM steps WHERE NOT EXISTS (SELECT 1 FROM tasks t WHERE t.task_id = steps.task_id)`),
    purgeTasks: db.prepare(`DELETE FROM tasks WHERE status IN (SELECT value FROM json_each(@statuses)) AND finished_at_ms < @before AND (@prefix IS NULL OR substr(name, 1, length(@prefix)) = @prefix)`),
    forgetKeys: db.prepare(`UPDATE tasks SET idempotency_key = NULL WHERE idempotency_key IS NOT NULL AND created_at_ms < @before AND (@prefix IS NULL OR substr(name, 1, length(@prefix)) = @prefix)`),
    taskCounts: db.prepare(`SELECT status, COUNT(*) AS n FROM tasks GROUP BY status`),
    stepCounts: db.prepare(`SELECT status, COUNT(*) AS n FROM steps GROUP BY status`),
    oldestReady: db.prepare(`SELECT MIN(ready_at_ms) AS at FROM steps WHERE status = 'READY'`),
    recentDurations: db.prepare(`SELECT finished_at_ms - started_at_ms AS d FROM steps
      WHERE status IN ('SUCCESS', 'DEAD_LETTER') AND finished_at_ms >= ? AND started_at_ms IS NOT NULL
      ORDER BY finished_at_ms DESC LIMIT 10000`),
    durationBuckets: db.prepare(`SELECT bucket, COUNT(*) AS n, SUM(d) AS total FROM (
        SELECT finished_at_ms - started_at_ms AS d,
          (SELECT COUNT(*) FROM json_each(@bounds) b WHERE b.value < finished_at_ms - started_at_ms) AS bucket
        FROM steps WHERE status IN ('SUCCESS', 'DEAD_LETTER') AND started_at_ms IS NOT NULL AND finished_at_ms IS NOT NULL)
      GROUP BY bucket`),
    nodesByStatus: db.prepare(`SELECT CASE WHEN state = 'stopped' THEN 'STOPPED' ELSE membership END AS status, COUNT(*) AS n FROM nodes GROUP BY 1`),
    runningByOwner: db.prepare(`SELECT COALESCE(CASE WHEN n.state = 'stopped' THEN 'STOPPED' ELSE n.membership END, 'UNKNOWN') AS status, COUNT(*) AS n FROM steps s LEFT JOIN nodes n ON n.node_id = s.lease_owner WHERE s.status = 'RUNNING' GROUP BY 1`),
    readyByAgent: db.prepare(`SELECT agent, COUNT(*) AS n, MIN(ready_at_ms) AS at FROM steps WHERE status = 'READY' GROUP BY agent ORDER BY agent`),
    deadLastHour: db.prepare(`SELECT COUNT(*) AS n FROM tasks WHERE status = 'DEAD_LETTER' AND finished_at_ms >= ?`),
    counters: db.prepare(`SELECT name, value FROM counters`),
    schedules: db.prepare(`SELECT COUNT(*) AS n, COALESCE(SUM(paused), 0) AS paused FROM schedules`),
    openWithDeadline: db.prepare(`SELECT COUNT(*) AS n FROM tasks WHERE deadline_at_ms IS NOT NULL AND status IN ('PENDING', 'RUNNING')`),
    cancelledByReason: db.prepare(`SELECT cancel_reason AS reason, COUNT(*) AS n FROM tasks WHERE status = 'CANCELLED' AND cancel_reason IS NOT NULL GROUP BY cancel_reason`),
    upsertNode: db.prepare(`INSERT INTO nodes (node_id, hostname, pid, state, started_at_ms, last_heartbeat_ms, membership_since_ms,
        agents_json, cpu_load, mem_load, running, capacity)
        VALUES (@nodeId, @hostname, @pid, 'running', @now, @now, @now, @agentsJson, @cpu, @memory, @running, @capacity)
      ON CONFLICT (node_id) DO UPDATE SET hostname = excluded.hostname, pid = excluded.pid, state = 'running',
        started_at_ms = CASE WHEN nodes.state = 'running' AND nodes.pid = excluded.pid THEN nodes.started_at_ms ELSE excluded.started_at_ms END,
        last_heartbeat_ms = excluded.last_heartbeat_ms, stopped_at_ms = NULL,
        agents_json = COALESCE(excluded.agents_json, nodes.agents_json), cpu_load = COALESCE(excluded.cpu_load, nodes.cpu_load),
        mem_load = COALESCE(excluded.mem_load, nodes.mem_load), running = COALESCE(excluded.running, nodes.running),
        capacity = COALESCE(excluded.capacity, nodes.capacity)`),
    stopNode: db.prepare(`UPDATE nodes SET state = 'stopped', stopped_at_ms = @now, last_heartbeat_ms = @now WHERE node_id = @nodeId AND pid = @pid`),
    nodes: db.prepare(`SELECT * FROM nodes ORDER BY node_id`),
    setMembership: db.prepare(`UPDATE nodes SET membership = @status, membership_since_ms = @sinceMs
      WHERE node_id = @nodeId AND membership = @fromStatus AND membership_since_ms = @fromSinceMs`),
    ownedBy: db.prepare(`SELECT id, task_id, step_id, lease_epoch, lease_owner FROM steps
      WHERE status = 'RUNNING' AND lease_owner IN (SELECT value FROM json_each(?)) LIMIT ?`),
    expireLease: db.prepare(`UPDATE steps SET lease_expires_at_ms = 0 WHERE id = ? AND status = 'RUNNING'`),
    bumpCounter: db.prepare(`INSERT INTO counters (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = value + excluded.value`),
    pruneNodes: db.prepare(`DELETE FROM nodes WHERE node_id IN (
      SELECT node_id FROM nodes WHERE membership = 'DEAD' AND last_heartbeat_ms < ? ORDER BY last_heartbeat_ms LIMIT ?)`),
    ownershipEvents: db.prepare(`SELECT at_ms, kind, task_id, step_id, node_id, from_node, details_json FROM ownership_events WHERE at_ms >= @since
      UNION ALL SELECT at_ms, 'lease-conflict', task_id, step_id, node_id, NULL,
        json_object('operation', operation, 'expectedLeaseEpoch', expected_epoch, 'actualLeaseEpoch', actual_epoch)
      FROM lease_conflicts WHERE at_ms >= @since
      ORDER BY 1 DESC LIMIT @limit`),
    clusterEpoch: db.prepare(`SELECT value FROM counters WHERE name = 'cluster_epoch'`),
    bumpEpoch: db.prepare(`INSERT INTO counters (name, value) VALUES ('cluster_epoch', 1)
      ON CONFLICT (name) DO UPDATE SET value = value + 1 RETURNING value`),
    fenceRunning: db.prepare(`UPDATE steps SET status = 'READY', ready_at_ms = @now, lease_owner = NULL, lease_epoch = lease_epoch + 1,
        lease_expires_at_ms = NULL, attempt = attempt - 1
      WHERE status = 'RUNNING' RETURNING task_id, step_id`),
    meta: db.prepare(`SELECT value FROM store_meta WHERE name = ?`),
    setMeta: db.prepare(`INSERT INTO store_meta (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value`),
    addSettingsChange: db.prepare(`INSERT INTO settings_history (entry_id, at_ms, node_id, actor, result, changed_fields_json, error)
      VALUES (@entryId, @atMs, @nodeId, @actor, @result, @changedFieldsJson, @error) ON CONFLICT DO NOTHING`),
    settingsHistory: db.prepare(`SELECT * FROM settings_history ORDER BY at_ms DESC, entry_id DESC LIMIT ?`),
    appendAudit: db.prepare(`INSERT INTO audit_records (at_ms, node_id, action, actor, resource, result, trace_id, span_id, task_id, step_id, details_json)
      VALUES (@atMs, @nodeId, @action, @actor, @resource, @result, @traceId, @spanId, @taskId, @stepId, @detailsJson)`),
    auditEntries: db.prepare(`SELECT * FROM audit_records WHERE (@taskId IS NULL OR task_id = @taskId) AND (@action IS NULL OR action = @action)
        AND (@fromMs IS NULL OR at_ms >= @fromMs) AND (@toMs IS NULL OR at_ms <= @toMs)
      ORDER BY at_ms DESC, id DESC LIMIT @limit`),
  };
  /** A write transaction that takes the write lock up front (no SQLITE_BUSY on upgrade). */
  const write = <A extends unknown[], R>(fn: (...args: A) => R) => {
    const t = db.transaction(fn);
    return (...args: A): R => t.immediate(...args);
  };
  const cancelHard = q.cancelSteps(OPEN);
  const flowFigures = (): NonNullable<OpsSnapshot["flow"]> => {
    const sch = q.schedules.get() as { n: number; paused: number };
    const cancelledByReason: Record<string, number> = Object.create(null);
    for (const r of q.cancelledByReason.all() as { reason: string; n: number }[]) cancelledByReason[r.reason] = r.n;
    return { schedules: sch.n, schedulesPaused: sch.paused, openWithDeadline: (q.openWithDeadline.get() as { n: number }).n, cancelledByReason };
  };
  const cancelSoft = q.cancelSteps(`('WAITING', 'SCHEDULED', 'QUEUED', 'THROTTLED', 'READY', 'RETRY_WAIT')`);

  return {
    cancelTask: write((taskId: string, mode: "hard" | "soft", now: number, reason: string | null): CancelResult | null => {
      const task = q.taskStatus.get(taskId) as { status: TaskStatus } | undefined;
      if (!task) return null;
      if (task.status === "SUCCESS" || task.status === "DEAD_LETTER" || task.status === "CANCELLED") {
        return { status: task.status, cancelledSteps: [], cancelledRunning: [] };
      }
      const cancelledRunning: LeaseRef[] = mode === "hard"
        ? (q.runningOf.all(taskId) as { id: number; task_id: string; step_id: string; lease_epoch: number }[])
          .map((r) => ({ stepKey: String(r.id), taskId: r.task_id, stepId: r.step_id, leaseEpoch: r.lease_epoch }))
        : [];
      const cancelledSteps = ((mode === "hard" ? cancelHard : cancelSoft).all({ taskId, now }) as { step_id: string }[]).map((r) => r.step_id);
      if (reason !== null) q.setCancelReason.run(reason, taskId);
      const open = (q.closeCancelled.get({ taskId, n: cancelledSteps.length, now }) as { steps_open: number }).steps_open;
      if (mode === "hard" || open === 0) q.finishCancelled.run({ taskId, now });
      const status = (q.taskStatus.get(taskId) as { status: TaskStatus }).status;
      return { status, cancelledSteps, cancelledRunning };
    }),

    replayTask: write((taskId: string, now: number): ReplayResult | null => {
      const task = q.taskStatus.get(taskId) as { status: TaskStatus; replays: number } | undefined;
      if (!task) return null;
      if (task.status !== "DEAD_LETTER") return { replayed: false, status: task.status, steps: [], round: task.replays };
      const dead = (q.replayDead.all({ taskId, now }) as { step_id: string }[]).map((r) => r.step_id);
      const blocked = (q.replayBlocked.all({ taskId, now }) as { step_id: string }[]).map((r) => r.step_id);
      const round = (q.reopenTask.get({ taskId, now }) as { replays: number }).replays;
      return { replayed: true, status: "RUNNING", steps: [...dead, ...blocked], round };
    }),

    purge: write((query: PurgeQuery): PurgeResult => {
      const prefix = query.namePrefix ?? null;
      const remove = (statuses: TaskStatus[], before: number) => {
        const args = { statuses: JSON.stringify(statuses), before, prefix };
        q.purgeEdges.run(args);
        q.purgeKv.run(args);
        q.purgeInputs.run(args);
        q.purgeOutputs.run(args);
        q.purgeSteps.run(args);
        return q.purgeTasks.run(args).changes;
      };
      return {
        finishedTasks: remove(["SUCCESS", "CANCELLED"], query.finishedBeforeMs),
        deadLetters: remove(["DEAD_LETTER"], query.deadBeforeMs),
        idempotencyKeys: q.forgetKeys.run({ before: query.idempotencyBeforeMs, prefix }).changes + (prefix === null ? q.purgeDedupe.run(query.idempotencyBeforeMs).changes : 0),
      };
    }),

    removeOrphanRows: write((): number =>
      q.orphanInputs.run().changes + q.orphanOutputs.run().changes + q.orphanEdges.run().changes + q.orphanSteps.run().changes),

    snapshot: db.transaction((now: number): OpsSnapshot => {
      const tasks = Object.fromEntries(TASK_STATUSES.map((s) => [s, 0])) as Record<TaskStatus, number>;
      for (const r of q.taskCounts.all() as { status: TaskStatus; n: number }[]) tasks[r.status] = r.n;
      const steps = Object.fromEntries(STEP_STATUSES.map((s) => [s, 0])) as Record<StepStatus, number>;
      for (const r of q.stepCounts.all() as { status: StepStatus; n: number }[]) steps[r.status] = r.n;
      const durations = (q.recentDurations.all(now - 3_600_000) as { d: number }[]).map((r) => r.d).sort((a, b) => a - b);
      const bounds = [...STEP_DURATION_BUCKETS_MS];
      const buckets = [...bounds, Infinity].map((leMs) => ({ leMs, count: 0 }));
      let sum = 0;
      for (const r of q.durationBuckets.all({ bounds: JSON.stringify(bounds) }) as { bucket: number; n: number; total: number }[]) {
        buckets[r.bucket]!.count = r.n;
        sum += r.total;
      }
      return {
        atMs: now, tasks, steps,
        oldestReadyAtMs: (q.oldestReady.get() as { at: number | null }).at,
        recentStepDurationsMs: durations, stepDurationBuckets: buckets, stepDurationSumMs: sum,
        deadLetteredLastHour: (q.deadLastHour.get(now - 3_600_000) as { n: number }).n,
        counters: Object.fromEntries((q.counters.all() as { name: string; value: number }[]).map((r) => [r.name, r.value])),
        readyByAgent: (q.readyByAgent.all() as { agent: string; n: number; at: number }[]).map((r) => ({ agent: r.agent, count: r.n, oldestReadyAtMs: r.at })),
        nodesByStatus: countsOf(q.nodesByStatus.all() as { status: string; n: number }[]),
        runningByOwnerStatus: countsOf(q.runningByOwner.all() as { status: string; n: number }[]),
        flow: flowFigures(),
      };
    }),

    kvGet: (namespace, key) => {
      const row = q.kvGet.get(namespace, key) as KvRow | undefined;
      return row ? toEntry(row) : null;
    },
    kvList: (namespace, prefix, limit) =>
      (q.kvList.all(namespace, prefix, `${prefix}\u{10FFFF}`, limit) as KvRow[]).map(toEntry),
    kvChanges: (namespace, afterVersion, limit) =>
      (q.kvChanges.all(namespace, afterVersion, limit) as KvRow[]).map((r) => ({ ...toEntry(r), namespace: r.namespace, deleted: r.deleted === 1 })),
    setMemberships: write((updates: { nodeId: string; from: { status: string; sinceMs: number }; status: string; sinceMs: number }[]) => {
      let applied = 0;
      for (const u of updates) {
        applied += q.setMembership.run({ nodeId: u.nodeId, status: u.status, sinceMs: u.sinceMs, fromStatus: u.from.status, fromSinceMs: u.from.sinceMs }).changes;
      }
      return applied;
    }),
    expireLeasesOf: write((nodeIds: string[], limit: number) => {
      const rows = q.ownedBy.all(JSON.stringify(nodeIds), limit) as { id: number; task_id: string; step_id: string; lease_epoch: number; lease_owner: string }[];
      // The reclaim that follows records each one as an ownership event.
      for (const r of rows) q.expireLease.run(r.id);
      if (rows.length > 0) q.bumpCounter.run("dead_owner_reclaimed_total", rows.length);
      return rows.length;
    }),
    pruneNodes: write((olderThanMs: number, limit: number) => q.pruneNodes.run(olderThanMs, limit).changes),
    ownershipEvents: (sinceMs, limit) => (q.ownershipEvents.all({ since: sinceMs, limit }) as {
      at_ms: number; kind: string; task_id: string | null; step_id: string | null; node_id: string; from_node: string | null; details_json: string;
    }[]).map((r) => ({
      atMs: r.at_ms, kind: r.kind, taskId: r.task_id, stepId: r.step_id, nodeId: r.node_id, fromNode: r.from_node,
      details: JSON.parse(r.details_json) as Record<string, unknown>,
    })),
    clusterEpoch: () => (q.clusterEpoch.get() as { value: number } | undefined)?.value ?? 0,
    bumpClusterEpoch: write((now: number) => {
      const clusterEpoch = (q.bumpEpoch.get() as { value: number }).value;
      const fencedSteps = (q.fenceRunning.all({ now }) as { task_id: string; step_id: string }[]).map((r) => ({ taskId: r.task_id, stepId: r.step_id }));
      return { clusterEpoch, fencedSteps };
    }),
    bumpCounter: (name: string, by: number) => { q.bumpCounter.run(name, by); },
    meta: (name) => (q.meta.get(name) as { value: string } | undefined)?.value ?? null,
    setMeta: (name, value) => { q.setMeta.run(name, value); },
    addSettingsChange: (c) => {
      q.addSettingsChange.run({ ...c, changedFieldsJson: JSON.stringify(c.changedFields) });
    },
    settingsHistory: (limit) => (q.settingsHistory.all(limit) as SettingsRow[]).map(toSettingsChange),
    appendAudit: write((entries: readonly AuditEntry[]) => { for (const e of entries) q.appendAudit.run(e); }),
    auditEntries: (f) => (q.auditEntries.all({
      taskId: f.taskId ?? null, action: f.action ?? null, fromMs: f.fromMs ?? null, toMs: f.toMs ?? null, limit: f.limit,
    }) as AuditRow[]).map(toAuditEntry),
    heartbeatNode: (node: NodeHeartbeat, now: number) => {
      q.upsertNode.run({ nodeId: node.nodeId, hostname: node.hostname, pid: node.pid, now, ...heartbeatColumns(node) });
    },
    stopNode: (node: { nodeId: string; pid: number }, now: number) => {
      q.stopNode.run({ ...node, now });
    },
    nodes: (): NodeRecord[] => (q.nodes.all() as NodeRow[]).map(toNodeRecord),
  };
}

function toEntry(r: KvRow): KvEntry {
  return { key: r.key, value: r.value_json === null ? null : JSON.parse(r.value_json), version: r.version, updatedAtMs: r.updated_at_ms, writer: r.writer };
}
