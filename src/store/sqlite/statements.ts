import type Database from "better-sqlite3";

/** Every statement the SQLite store runs, prepared once at open. */
const SQL = {
  taskByKey: `SELECT task_id, steps_total FROM tasks WHERE idempotency_key = ?`,
  insertTask: `INSERT INTO tasks (task_id, name, status, priority, idempotency_key, fail_fast, trace_id, parent_span_id,
      steps_total, steps_open, created_at_ms, updated_at_ms)
    VALUES (@taskId, @name, 'PENDING', @priority, @idempotencyKey, @failFast, @traceId, @parentSpanId, @stepsTotal, @stepsTotal, @now, @now)`,
  insertStep: `INSERT INTO steps (task_id, step_id, agent, status, priority, trace_id, input_json, depends_on_json, deps_open,
      max_attempts, base_backoff_ms, max_backoff_ms, timeout_ms, ready_at_ms)
    VALUES (@taskId, @stepId, @agent, @status, @priority, @traceId, @inputJson, @dependsOnJson, @depsOpen,
      @maxAttempts, @baseBackoffMs, @maxBackoffMs, @timeoutMs, @now)`,
  insertEdge: `INSERT INTO edges (task_id, from_step, to_step) VALUES (?, ?, ?)`,

  completeStep: `UPDATE steps SET status = 'SUCCESS', output_json = @outputJson, error_json = NULL, finished_at_ms = @now,
      lease_expires_at_ms = NULL
    WHERE id = @stepRowId AND status = 'RUNNING' AND lease_owner = @nodeId AND lease_epoch = @leaseEpoch`,
  retryStep: `UPDATE steps SET status = 'RETRY_WAIT', error_json = @errorJson, ready_at_ms = @atMs, lease_expires_at_ms = NULL
    WHERE id = @stepRowId AND status = 'RUNNING' AND lease_owner = @nodeId AND lease_epoch = @leaseEpoch`,
  deadStep: `UPDATE steps SET status = 'DEAD_LETTER', error_json = @errorJson, finished_at_ms = @now, lease_expires_at_ms = NULL
    WHERE id = @stepRowId AND status = 'RUNNING' AND lease_owner = @nodeId AND lease_epoch = @leaseEpoch`,
  renewLease: `UPDATE steps SET lease_expires_at_ms = @expiresAtMs
    WHERE id = @stepRowId AND status = 'RUNNING' AND lease_owner = @nodeId AND lease_epoch = @leaseEpoch`,
  releaseStep: `UPDATE steps SET status = 'READY', ready_at_ms = @now, lease_owner = NULL, lease_epoch = lease_epoch + 1,
      lease_expires_at_ms = NULL, attempt = attempt - 1
    WHERE id = @stepRowId AND status = 'RUNNING' AND lease_owner = @nodeId AND lease_epoch = @leaseEpoch`,
  currentEpoch: `SELECT lease_epoch FROM steps WHERE id = ?`,
  insertConflict: `INSERT INTO lease_conflicts (task_id, step_id, expected_epoch, actual_epoch, node_id, operation, at_ms)
    VALUES (@taskId, @stepId, @expectedLeaseEpoch, @actualLeaseEpoch, @nodeId, @operation, @atMs)`,

  unlockDependents: `UPDATE steps SET deps_open = deps_open - 1,
      status = CASE WHEN deps_open = 1 AND status = 'WAITING' THEN 'READY' ELSE status END,
      ready_at_ms = CASE WHEN deps_open = 1 AND status = 'WAITING' THEN @now ELSE ready_at_ms END
    WHERE task_id = @taskId AND step_id IN (SELECT to_step FROM edges WHERE task_id = @taskId AND from_step = @stepId)`,
  skipDependents: `WITH RECURSIVE down(step_id) AS (
        SELECT to_step FROM edges WHERE task_id = @taskId AND from_step = @stepId
        UNION SELECT e.to_step FROM edges e JOIN down d ON e.from_step = d.step_id WHERE e.task_id = @taskId)
    UPDATE steps SET status = 'SKIPPED', finished_at_ms = @now
    WHERE task_id = @taskId AND step_id IN (SELECT step_id FROM down) AND status IN ('WAITING', 'READY', 'RETRY_WAIT')`,
  runningOfTask: `SELECT id, task_id, step_id, lease_epoch FROM steps WHERE task_id = ? AND status = 'RUNNING'`,
  cancelOpenSteps: `UPDATE steps SET status = 'CANCELLED', finished_at_ms = @now, lease_expires_at_ms = NULL,
      lease_epoch = CASE WHEN status = 'RUNNING' THEN lease_epoch + 1 ELSE lease_epoch END
    WHERE task_id = @taskId AND status IN ('WAITING', 'READY', 'RUNNING', 'RETRY_WAIT')`,
  closeSteps: `UPDATE tasks SET steps_open = steps_open - @closed, dead_count = dead_count + @dead,
      cancelled_count = cancelled_count + @cancelled, updated_at_ms = @now
    WHERE task_id = @taskId RETURNING steps_open, dead_count, cancelled_count, fail_fast`,
  finishTask: `UPDATE tasks SET status = @status, finished_at_ms = @now, updated_at_ms = @now
    WHERE task_id = @taskId AND status IN ('PENDING', 'RUNNING')`,
  startTask: `UPDATE tasks SET status = 'RUNNING', updated_at_ms = ? WHERE task_id = ? AND status = 'PENDING'`,

  releaseRetries: `UPDATE steps SET status = 'READY'
    WHERE id IN (SELECT id FROM steps WHERE status = 'RETRY_WAIT' AND ready_at_ms <= ? ORDER BY ready_at_ms LIMIT ?)`,
  nextRetryAt: `SELECT MIN(ready_at_ms) AS at FROM steps WHERE status = 'RETRY_WAIT'`,
  expiredLeases: `SELECT id, task_id, step_id, lease_epoch, attempt, max_attempts, lease_owner FROM steps
    WHERE status = 'RUNNING' AND lease_expires_at_ms < ? ORDER BY lease_expires_at_ms LIMIT ?`,
  reclaimStep: `UPDATE steps SET status = 'READY', ready_at_ms = @now, lease_owner = NULL, lease_epoch = lease_epoch + 1,
      lease_expires_at_ms = NULL
    WHERE id = @stepRowId AND status = 'RUNNING' AND lease_epoch = @leaseEpoch`,
  reclaimDeadStep: `UPDATE steps SET status = 'DEAD_LETTER', error_json = @errorJson, finished_at_ms = @now,
      lease_epoch = lease_epoch + 1, lease_expires_at_ms = NULL
    WHERE id = @stepRowId AND status = 'RUNNING' AND lease_epoch = @leaseEpoch`,

  readyCandidates: `SELECT id FROM steps WHERE status = 'READY' AND priority = ? ORDER BY ready_at_ms, id LIMIT ?`,
  claimStep: `UPDATE steps SET status = 'RUNNING', lease_owner = @nodeId, lease_epoch = lease_epoch + 1,
      lease_expires_at_ms = @expiresAtMs, attempt = attempt + 1, started_at_ms = @now, finished_at_ms = NULL
    WHERE id = @id AND status = 'READY'
    RETURNING id, task_id, step_id, agent, input_json, depends_on_json, lease_epoch, attempt, max_attempts,
      base_backoff_ms, max_backoff_ms, timeout_ms, priority, trace_id`,
  depOutputs: `SELECT s.step_id, s.output_json FROM edges e
      JOIN steps s ON s.task_id = e.task_id AND s.step_id = e.from_step
    WHERE e.task_id = ? AND e.to_step = ?`,
  bumpCounter: `INSERT INTO counters (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = value + excluded.value`,

  getTask: `SELECT * FROM tasks WHERE task_id = ?`,
  stepsOfTask: `SELECT * FROM steps WHERE task_id = ? ORDER BY id`,
  edgesOfTask: `SELECT from_step, to_step FROM edges WHERE task_id = ? ORDER BY from_step, to_step`,
  listTasks: `SELECT * FROM tasks ORDER BY created_at_ms DESC, task_id LIMIT ? OFFSET ?`,
  countTasks: `SELECT COUNT(*) AS n FROM tasks`,
  listTasksByStatus: `SELECT * FROM tasks WHERE status = ? ORDER BY created_at_ms DESC, task_id LIMIT ? OFFSET ?`,
  countTasksByStatus: `SELECT COUNT(*) AS n FROM tasks WHERE status = ?`,
  taskStatus: `SELECT status FROM tasks WHERE task_id = ?`,
  listConflicts: `SELECT * FROM lease_conflicts WHERE at_ms >= ? ORDER BY at_ms DESC, id DESC LIMIT ?`,
  counters: `SELECT name, value FROM counters`,
} as const;

export type StatementName = keyof typeof SQL;
export type Statements = Record<StatementName, Database.Statement>;

export function prepareStatements(db: Database.Database): Statements {
  const out = {} as Statements;
  for (const name of Object.keys(SQL) as StatementName[]) out[name] = db.prepare(SQL[name]);
  return out;
}
