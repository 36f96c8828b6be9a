import type Database from "better-sqlite3";

/** Every statement the SQLite store runs, prepared once at open. */
const SQL = {
  taskByKey: `SELECT task_id, steps_total FROM tasks WHERE idempotency_key = ?`,
  insertTask: `INSERT INTO tasks (task_id, name, status, priority, idempotency_key, fail_fast, trace_id, parent_span_id,
      steps_total, steps_open, created_at_ms, updated_at_ms)
    VALUES (@taskId, @name, 'PENDING', @priority, @idempotencyKey, @failFast, @traceId, @parentSpanId, @stepsTotal, @stepsTotal, @now, @now)`,
  insertStep: `INSERT INTO steps (task_id, step_id, agent, status, priority, trace_id, depends_on_json, deps_open,
      dependents, max_attempts, base_backoff_ms, max_backoff_ms, timeout_ms, ready_at_ms)
    VALUES (@taskId, @stepId, @agent, @status, @priority, @traceId, @dependsOnJson, @depsOpen,
      @dependents, @maxAttempts, @baseBackoffMs, @maxBackoffMs, @timeoutMs, @now)`,
  /** A step with flow control (start time, concurrency key, rate limit, deadline): the same row, more columns. */
  insertFlowStep: `INSERT INTO steps (task_id, step_id, agent, status, priority, trace_id, depends_on_json, deps_open,
      dependents, max_attempts, base_backoff_ms, max_backoff_ms, timeout_ms, ready_at_ms, not_before_ms, deadline_at_ms,
      concurrency_key, concurrency_limit, concurrency_strategy, rate_name, rate_bucket, rate_per_sec, rate_burst)
    VALUES (@taskId, @stepId, @agent, @status, @priority, @traceId, @dependsOnJson, @depsOpen,
      @dependents, @maxAttempts, @baseBackoffMs, @maxBackoffMs, @timeoutMs, @readyAt, @notBeforeMs, @deadlineAtMs,
      @concurrencyKey, @concurrencyLimit, @concurrencyStrategy, @rateName, @rateBucket, @ratePerSec, @rateBurst)`,
  /** Params: @now; @tasks, a JSON array of [task id, name, priority, fail fast, trace id, parent span id, steps]. */
  insertTasksMany: `INSERT INTO tasks (task_id, name, status, priority, idempotency_key, fail_fast, trace_id, parent_span_id,
      steps_total, steps_open, created_at_ms, updated_at_ms)
    SELECT value ->> 0, value ->> 1, 'PENDING', value ->> 2, NULL, value ->> 3, value ->> 4, value ->> 5, value ->> 6, value ->> 6, @now, @now
    FROM json_each(@tasks)`,
  /** Params: @now; @steps, a JSON array of insertStep's values in its column order (task id … timeout). */
  insertStepsMany: `INSERT INTO steps (task_id, step_id, agent, status, priority, trace_id, depends_on_json, deps_open,
      dependents, max_attempts, base_backoff_ms, max_backoff_ms, timeout_ms, ready_at_ms)
    SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5, value ->> 6, value ->> 7,
      value ->> 8, value ->> 9, value ->> 10, value ->> 11, value ->> 12, @now
    FROM json_each(@steps)`,
  /** Params: a JSON array of [task id, step id, input JSON as a string], of steps just inserted. */
  insertInputsMany: `INSERT INTO step_inputs (step_row_id, input_json)
    SELECT s.id, j.value ->> 2 FROM json_each(?) j JOIN steps s ON s.task_id = j.value ->> 0 AND s.step_id = j.value ->> 1`,
  /** Params: a JSON array of [task id, from step, to step]. */
  insertEdgesMany: `INSERT INTO edges (task_id, from_step, to_step) SELECT value ->> 0, value ->> 1, value ->> 2 FROM json_each(?)`,
  setTaskFlow: `UPDATE tasks SET deadline_at_ms = @deadlineAtMs, schedule_name = @scheduleName WHERE task_id = @taskId`,
  insertInput: `INSERT INTO step_inputs (step_row_id, input_json) VALUES (?, ?)`,
  insertEdge: `INSERT INTO edges (task_id, from_step, to_step) VALUES (?, ?, ?)`,

  /** Params: @refs, a JSON array of [step row id, lease epoch]; @nodeId, @now. The fenced ones that were RUNNING under those leases close. */
  completeSteps: `UPDATE steps SET status = 'SUCCESS', error_json = NULL, finished_at_ms = @now, lease_expires_at_ms = NULL
    FROM json_each(@refs) AS r
    WHERE steps.id = r.value ->> 0 AND steps.status = 'RUNNING' AND steps.lease_owner = @nodeId AND steps.lease_epoch = r.value ->> 1
    RETURNING steps.id, steps.dependents`,
  /** Params: a JSON array of [step row id, output JSON as a string]. */
  insertOutputs: `INSERT INTO step_outputs (step_row_id, output_json) SELECT value ->> 0, value ->> 1 FROM json_each(?) WHERE true
    ON CONFLICT (step_row_id) DO UPDATE SET output_json = excluded.output_json`,
  retryStep: `UPDATE steps SET status = 'RETRY_WAIT', error_json = @errorJson, ready_at_ms = @atMs, lease_expires_at_ms = NULL
    WHERE id = @id AND status = 'RUNNING' AND lease_owner = @nodeId AND lease_epoch = @leaseEpoch`,
  deadStep: `UPDATE steps SET status = 'DEAD_LETTER', error_json = @errorJson, finished_at_ms = @now, lease_expires_at_ms = NULL
    WHERE id = @id AND status = 'RUNNING' AND lease_owner = @nodeId AND lease_epoch = @leaseEpoch`,
  renewLease: `UPDATE steps SET lease_expires_at_ms = @expiresAtMs
    WHERE id = @id AND status = 'RUNNING' AND lease_owner = @nodeId AND lease_epoch = @leaseEpoch`,
  releaseStep: `UPDATE steps SET status = 'READY', ready_at_ms = @now, lease_owner = NULL, lease_epoch = lease_epoch + 1,
      lease_expires_at_ms = NULL, attempt = attempt - 1
    WHERE id = @id AND status = 'RUNNING' AND lease_owner = @nodeId AND lease_epoch = @leaseEpoch`,
  currentEpoch: `SELECT lease_epoch FROM steps WHERE id = ?`,
  insertConflict: `INSERT INTO lease_conflicts (task_id, step_id, expected_epoch, actual_epoch, node_id, operation, at_ms)
    VALUES (@taskId, @stepId, @expectedLeaseEpoch, @actualLeaseEpoch, @nodeId, @operation, @atMs)`,

  /** Params: @ids JSON array of step row ids that just succeeded (and have dependents), @now. */
  unlockDependentsOf: `UPDATE steps SET deps_open = deps_open - x.n,
      status = CASE WHEN deps_open <> x.n OR status <> 'WAITING' THEN status WHEN not_before_ms > @now THEN 'SCHEDULED'
        WHEN concurrency_key IS NOT NULL THEN 'QUEUED' ELSE 'READY' END,
      ready_at_ms = CASE WHEN deps_open = x.n AND status = 'WAITING' THEN MAX(@now, COALESCE(not_before_ms, 0)) ELSE ready_at_ms END
    FROM (SELECT e.task_id, e.to_step, COUNT(*) AS n FROM json_each(@ids) j
        JOIN steps c ON c.id = j.value
        JOIN edges e ON e.task_id = c.task_id AND e.from_step = c.step_id
        GROUP BY e.task_id, e.to_step) AS x
    WHERE steps.task_id = x.task_id AND steps.step_id = x.to_step`,
  skipDependents: `WITH RECURSIVE down(step_id) AS (
        SELECT to_step FROM edges WHERE task_id = @taskId AND from_step = @stepId
        UNION SELECT e.to_step FROM edges e JOIN down d ON e.from_step = d.step_id WHERE e.task_id = @taskId)
    UPDATE steps SET status = 'SKIPPED', finished_at_ms = @now
    WHERE task_id = @taskId AND step_id IN (SELECT step_id FROM down) AND status IN ('WAITING', 'SCHEDULED', 'QUEUED', 'THROTTLED', 'READY', 'RETRY_WAIT')`,
  runningOfTask: `SELECT id, task_id, step_id, lease_epoch FROM steps WHERE task_id = ? AND status = 'RUNNING'`,
  cancelOpenSteps: `UPDATE steps SET status = 'CANCELLED', finished_at_ms = @now, lease_expires_at_ms = NULL,
      lease_epoch = CASE WHEN status = 'RUNNING' THEN lease_epoch + 1 ELSE lease_epoch END
    WHERE task_id = @taskId AND status IN ('WAITING', 'SCHEDULED', 'QUEUED', 'THROTTLED', 'READY', 'RUNNING', 'RETRY_WAIT')`,
  /**
   * Params: @deltas JSON array of [taskId, closed, dead, cancelled], one per task, @now. Moves the counters of open
   * tasks and finishes those left with no open step, in one row write; returns the rows it touched.
   */
  closeStepsMany: `UPDATE tasks SET steps_open = steps_open - (d.value ->> 1), dead_count = dead_count + (d.value ->> 2),
      cancelled_count = cancelled_count + (d.value ->> 3), updated_at_ms = @now,
      status = CASE WHEN steps_open > (d.value ->> 1) THEN status WHEN dead_count + (d.value ->> 2) > 0 THEN 'DEAD_LETTER'
        WHEN cancelled_count + (d.value ->> 3) > 0 THEN 'CANCELLED' ELSE 'SUCCESS' END,
      finished_at_ms = CASE WHEN steps_open > (d.value ->> 1) THEN finished_at_ms ELSE @now END
    FROM json_each(@deltas) AS d
    WHERE tasks.task_id = d.value ->> 0 AND +tasks.status IN ('PENDING', 'RUNNING')
    RETURNING task_id, status, steps_open`,
  /** Params: @ids JSON array of task ids, @now. (`+status` keeps the planner on the primary key, off the status index.) */
  startTasks: `UPDATE tasks SET status = 'RUNNING', updated_at_ms = @now
    WHERE task_id IN (SELECT value FROM json_each(@ids)) AND +status = 'PENDING'`,

  releaseRetries: `UPDATE steps SET status = 'READY'
    WHERE id IN (SELECT id FROM steps WHERE status = 'RETRY_WAIT' AND ready_at_ms <= ? ORDER BY ready_at_ms LIMIT ?)`,
  expiredLeases: `SELECT id, task_id, step_id, lease_epoch, attempt, max_attempts, lease_owner, lease_expires_at_ms FROM steps
    WHERE status = 'RUNNING' AND lease_expires_at_ms < ? ORDER BY lease_expires_at_ms LIMIT ?`,
  reclaimStep: `UPDATE steps SET status = 'READY', ready_at_ms = @now, lease_owner = NULL, lease_epoch = lease_epoch + 1,
      lease_expires_at_ms = NULL
    WHERE id = @id AND status = 'RUNNING' AND lease_epoch = @leaseEpoch`,
  reclaimDeadStep: `UPDATE steps SET status = 'DEAD_LETTER', error_json = @errorJson, finished_at_ms = @now,
      lease_epoch = lease_epoch + 1, lease_expires_at_ms = NULL
    WHERE id = @id AND status = 'RUNNING' AND lease_epoch = @leaseEpoch`,

  /** Params: @priority, @limit, @offset, @agents (JSON array or null: any). READY steps of one priority class, oldest first. */
  readyOfClass: `SELECT id FROM steps WHERE status = 'READY' AND priority = @priority AND (@agents IS NULL OR agent IN (SELECT value FROM json_each(@agents)))
    ORDER BY ready_at_ms, id LIMIT @limit OFFSET @offset`,
  /** Params: @agents. Which priority classes have READY steps (of these agents). */
  readyClasses: `SELECT EXISTS (SELECT 1 FROM steps WHERE status = 'READY' AND priority = 0 AND (@agents IS NULL OR agent IN (SELECT value FROM json_each(@agents)))) AS c0,
    EXISTS (SELECT 1 FROM steps WHERE status = 'READY' AND priority = 1 AND (@agents IS NULL OR agent IN (SELECT value FROM json_each(@agents)))) AS c1,
    EXISTS (SELECT 1 FROM steps WHERE status = 'READY' AND priority = 2 AND (@agents IS NULL OR agent IN (SELECT value FROM json_each(@agents)))) AS c2`,
  /** Params: @agents. Read-only probe: is there anything a claim-only batch could do (READY or QUEUED steps, retries or timed waits due, leases expired)? */
  workProbe: `SELECT EXISTS (SELECT 1 FROM steps WHERE status = 'READY' AND (@agents IS NULL OR agent IN (SELECT value FROM json_each(@agents)))) OR EXISTS (SELECT 1 FROM steps WHERE status = 'QUEUED') AS ready,
    (SELECT MIN(at) FROM (SELECT MIN(ready_at_ms) AS at FROM steps WHERE status = 'RETRY_WAIT'
      UNION ALL SELECT MIN(ready_at_ms) FROM steps WHERE status IN ('SCHEDULED', 'THROTTLED'))) AS retry_at,
    (SELECT MIN(lease_expires_at_ms) FROM steps WHERE status = 'RUNNING') AS expires_at`,
  /** Params: @ids JSON array of step row ids, @nodeId, @expiresAtMs, @now. Rows come back in no particular order. */
  claimSteps: `UPDATE steps SET status = 'RUNNING', lease_owner = @nodeId, lease_epoch = lease_epoch + 1,
      lease_expires_at_ms = @expiresAtMs, attempt = attempt + 1, started_at_ms = @now, finished_at_ms = NULL
    WHERE id IN (SELECT value FROM json_each(@ids)) AND status = 'READY'
    RETURNING id, task_id, step_id, agent, depends_on_json, dependents, lease_epoch, attempt, max_attempts,
      base_backoff_ms, max_backoff_ms, timeout_ms, priority, trace_id, deadline_at_ms, rate_bucket, rate_name, rate_per_sec, rate_burst`,
  /** Params: JSON array of step row ids. */
  inputsOf: `SELECT step_row_id AS id, input_json FROM step_inputs WHERE step_row_id IN (SELECT value FROM json_each(?))`,
  /** Params: JSON array of step row ids. The outputs of their dependencies, one row per edge. */
  depOutputsMany: `SELECT c.id AS for_id, s.step_id, o.output_json FROM json_each(?) j
      JOIN steps c ON c.id = j.value
      JOIN edges e ON e.task_id = c.task_id AND e.to_step = c.step_id
      JOIN steps s ON s.task_id = e.task_id AND s.step_id = e.from_step
      LEFT JOIN step_outputs o ON o.step_row_id = s.id`,
  fenceCheck: `SELECT 1 AS ok FROM steps
    WHERE id = @id AND status = 'RUNNING' AND lease_owner = @nodeId AND lease_epoch = @leaseEpoch`,
  nextKvVersion: `INSERT INTO counters (name, value) VALUES ('kv_version', 1)
    ON CONFLICT (name) DO UPDATE SET value = value + 1 RETURNING value`,
  kvUpsert: `INSERT INTO kv (namespace, key, value_json, deleted, version, updated_at_ms, writer)
      VALUES (@namespace, @key, @valueJson, @deleted, @version, @now, @writer)
    ON CONFLICT (namespace, key) DO UPDATE SET value_json = excluded.value_json, deleted = excluded.deleted,
      version = excluded.version, updated_at_ms = excluded.updated_at_ms, writer = excluded.writer`,
  progressStep: `UPDATE steps SET progress_pct = @pct, progress_message = @message
    WHERE id = @id AND status = 'RUNNING' AND lease_owner = @nodeId AND lease_epoch = @leaseEpoch`,
  kvOfTasks: `SELECT namespace, key, value_json FROM kv WHERE namespace IN (SELECT value FROM json_each(?)) AND deleted = 0`,
  ownershipEvent: `INSERT INTO ownership_events (at_ms, kind, task_id, step_id, node_id, from_node, lease_epoch, details_json)
    VALUES (@atMs, @kind, @taskId, @stepId, @nodeId, @fromNode, @leaseEpoch, @detailsJson)`,
  bumpCounter: `INSERT INTO counters (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = value + excluded.value`,

  getTask: `SELECT * FROM tasks WHERE task_id = ?`,
  stepsOfTask: `SELECT s.*, i.input_json, o.output_json FROM steps s
      JOIN step_inputs i ON i.step_row_id = s.id LEFT JOIN step_outputs o ON o.step_row_id = s.id
    WHERE s.task_id = ? ORDER BY s.id`,
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
