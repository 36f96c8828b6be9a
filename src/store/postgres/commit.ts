import { ErrorCode, StoreError, errorToWire } from "../../errors.js";
import { countForced, reclaimEvent, type ReclaimedLease } from "../claim.js";
import { dependentCounts } from "../rows.js";
import type {
  ClaimedStep, CommitBatch, CommitResult, LeaseConflict, LeaseRef, NewTask, StepFailure, SubmitOutcome, TaskStatus,
} from "../types.js";
import { statements, type Queryable } from "./db.js";
import { admitQueued, applyFlow, dedupe, hasStepFlow, setCancelReason, takeTokens, type RateRow } from "./flow.js";

/**
 * What a batch leaves for the next: the earliest timed wait (retry, delayed start, rate-limit
 * token), whether steps wait QUEUED, whether READY steps this node could run are rate-limited
 * (their claim takes tokens, so it needs a transaction), and per priority class whether READY
 * steps are left that this node could run (the claim's backlog). In the claim's own statement the steps it took
 * are still READY in the snapshot, hence `NOT IN picked`.
 */
function tailSql(afterClaim: boolean): string {
  return `LEAST((SELECT MIN(ready_at_ms) FROM steps WHERE status = 'RETRY_WAIT'),
      (SELECT MIN(ready_at_ms) FROM steps WHERE status IN ('SCHEDULED', 'THROTTLED'))) AS retry_at,
    EXISTS (SELECT 1 FROM steps WHERE status = 'QUEUED') AS queued,
    EXISTS (SELECT 1 FROM steps WHERE status = 'READY' AND rate_bucket IS NOT NULL AND ($1::text[] IS NULL OR agent = ANY($1::text[]))) AS rated,
    ${[0, 1, 2].map((c) => `EXISTS (SELECT 1 FROM steps WHERE status = 'READY' AND priority = ${c} AND ($1::text[] IS NULL OR agent = ANY($1::text[]))${
      afterClaim ? " AND id NOT IN (SELECT id FROM picked)" : ""}) AS c${c}`).join(",\n    ")}`;
}

/**
 * Claims up to $2 READY steps (of priority $6 with `oneClass`) for node $3, lease until $4,
 * at $5, agents $1 (null: any), and returns them with their payloads: input, the outputs of
 * their dependencies and their task's checkpoints, JSON members ready to join. Starts their
 * tasks. One statement: claim_pick (migration 12: `SELECT ... ORDER BY ... LIMIT ... FOR UPDATE
 * SKIP LOCKED` along the index steps_claim) in a WITH, never `IN (subquery LIMIT)` (PostgreSQL
 * bug #15715). The class-wide claim also returns the tail (one row even when nothing is claimed).
 * Their tasks start by primary key: `(status = 'PENDING') IS TRUE` is a filter no index serves,
 * so stale statistics cannot turn it into a scan of every PENDING task.
 */
function claimSql(oneClass: boolean, pick: "claim_pick" | "claim_pick_unrated" = "claim_pick"): string {
  const picked = `picked AS (SELECT p AS id FROM ${pick}($2::int, $1::text[], ${oneClass ? "$6::int" : "NULL"}) AS p)`;
  const claimed = `c AS (UPDATE steps s SET status = 'RUNNING', lease_owner = $3, lease_epoch = s.lease_epoch + 1, lease_expires_at_ms = $4,
        attempt = s.attempt + 1, started_at_ms = $5, finished_at_ms = NULL
      FROM picked WHERE s.id = picked.id
      RETURNING s.id, s.task_id, s.step_id, s.agent, s.depends_on_json, s.dependents, s.lease_epoch, s.attempt, s.max_attempts,
        s.base_backoff_ms, s.max_backoff_ms, s.timeout_ms, s.priority, s.trace_id, s.ready_at_ms,
        s.deadline_at_ms, s.rate_bucket, s.rate_name, s.rate_per_sec, s.rate_burst),
    st AS (UPDATE tasks SET status = 'RUNNING', updated_at_ms = $5
      WHERE task_id = ANY(ARRAY(SELECT task_id FROM c)) AND (status = 'PENDING') IS TRUE)`;
  const rows = `SELECT c.*, i.input_json,
        CASE WHEN c.depends_on_json = '[]' THEN NULL ELSE (SELECT string_agg(to_json(d.step_id)::text || ':' || COALESCE(o.output_json, 'null'), ',')
          FROM edges e JOIN steps d ON d.task_id = e.task_id AND d.step_id = e.from_step LEFT JOIN step_outputs o ON o.step_row_id = d.id
          WHERE e.task_id = c.task_id AND e.to_step = c.step_id) END AS deps_json,
        (SELECT string_agg(to_json(k.key)::text || ':' || k.value_json, ',') FROM kv k WHERE k.namespace = c.task_id AND NOT k.deleted) AS kv_json
      FROM c LEFT JOIN step_inputs i ON i.step_row_id = c.id`;
  return oneClass
    ? `WITH ${picked}, ${claimed} ${rows}`
    : `WITH ${picked}, ${claimed}, r AS (${rows}), t AS (SELECT ${tailSql(true)}) SELECT t.*, r.* FROM t LEFT JOIN r ON true`;
}

/**
 * The group commit on PostgreSQL: set-based statements (arrays through unnest), one round trip
 * per phase, all in the caller's transaction. Every fenced write checks (step, owner, epoch) in
 * its WHERE clause and what it did through RETURNING.
 */
const SQL = {
  /**
   * Tasks, their steps, inputs and edges in one statement; the steps of a task that was not
   * inserted (its id or idempotency key exists) are not written. Returns the inserted task ids.
   */
  insertTasks: `WITH t AS (INSERT INTO tasks (task_id, name, status, priority, idempotency_key, fail_fast, trace_id, parent_span_id,
        steps_total, steps_open, created_at_ms, updated_at_ms)
      SELECT t.id, t.name, 'PENDING', t.pr, t.k, t.ff, t.tr, t.ps, t.n, t.n, $9, $9
      FROM unnest($1::text[], $2::text[], $3::int[], $4::text[], $5::bool[], $6::text[], $7::text[], $8::int[]) AS t(id, name, pr, k, ff, tr, ps, n)
      ON CONFLICT DO NOTHING RETURNING task_id),
    u AS (SELECT * FROM unnest($10::text[], $11::text[], $12::text[], $13::int[], $14::text[], $15::text[], $16::int[], $17::int[], $18::int[],
        $19::int[], $20::int[], $21::int[], $22::text[]) WITH ORDINALITY
        AS u(task_id, step_id, agent, priority, trace_id, deps, deps_open, dependents, max_attempts, base, maxb, timeout, input, ord)
      WHERE u.task_id IN (SELECT task_id FROM t)),
    s AS (INSERT INTO steps (task_id, step_id, agent, status, priority, trace_id, depends_on_json, deps_open, dependents,
        max_attempts, base_backoff_ms, max_backoff_ms, timeout_ms, ready_at_ms)
      SELECT task_id, step_id, agent, CASE WHEN deps_open = 0 THEN 'READY' ELSE 'WAITING' END, priority, trace_id, deps, deps_open, dependents,
        max_attempts, base, maxb, timeout, $9 FROM u ORDER BY ord
      RETURNING id, task_id, step_id),
    e AS (INSERT INTO edges (task_id, from_step, to_step)
      SELECT * FROM unnest($23::text[], $24::text[], $25::text[]) AS e(task_id, from_step, to_step) WHERE e.task_id IN (SELECT task_id FROM t)),
    i AS (INSERT INTO step_inputs (step_row_id, input_json) SELECT s.id, u.input FROM s JOIN u ON u.task_id = s.task_id AND u.step_id = s.step_id)
    SELECT task_id FROM t`,
  tasksByKeys: `SELECT idempotency_key, task_id, steps_total FROM tasks WHERE idempotency_key = ANY($1::text[])`,
  fenceCheck: `SELECT id, lease_epoch FROM steps WHERE id = ANY($1::bigint[]) AND status = 'RUNNING' AND lease_owner = $2`,
  kvVersion: `SELECT nextval('kv_version_seq') AS v`,
  kvUpsert: `INSERT INTO kv (namespace, key, value_json, deleted, version, updated_at_ms, writer)
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bool[], $5::bigint[], $6::bigint[], $7::text[])
    ON CONFLICT (namespace, key) DO UPDATE SET value_json = excluded.value_json, deleted = excluded.deleted,
      version = excluded.version, updated_at_ms = excluded.updated_at_ms, writer = excluded.writer`,
  progress: `UPDATE steps SET progress_pct = u.pct, progress_message = u.msg
    FROM unnest($1::bigint[], $2::int[], $3::float8[], $4::text[]) AS u(id, ep, pct, msg)
    WHERE steps.id = u.id AND steps.status = 'RUNNING' AND steps.lease_owner = $5 AND steps.lease_epoch = u.ep`,
  renew: `UPDATE steps SET lease_expires_at_ms = $3
    FROM unnest($1::bigint[], $2::int[]) AS u(id, ep)
    WHERE steps.id = u.id AND steps.status = 'RUNNING' AND steps.lease_owner = $4 AND steps.lease_epoch = u.ep
    RETURNING steps.id`,
  refuse: `WITH u AS (SELECT * FROM unnest($1::text[], $2::text[], $3::int[], $4::bigint[], $5::text[]) AS u(task_id, step_id, expected, id, op)),
    ins AS (INSERT INTO lease_conflicts (task_id, step_id, expected_epoch, actual_epoch, node_id, operation, at_ms)
      SELECT u.task_id, u.step_id, u.expected, s.lease_epoch, $6, u.op, $7 FROM u LEFT JOIN steps s ON s.id = u.id
      RETURNING task_id, step_id, expected_epoch, actual_epoch, operation),
    c AS (INSERT INTO counters (name, value) SELECT 'lease_conflict_total', COUNT(*) FROM ins
      ON CONFLICT (name) DO UPDATE SET value = counters.value + excluded.value)
    SELECT * FROM ins`,
  /**
   * Completes steps, stores their outputs, resolves the DAG edges out of them and closes their
   * tasks' counts (rows: one per completed step, then one per task it finished, with its status).
   */
  complete: `WITH u AS (SELECT * FROM unnest($1::bigint[], $2::int[], $3::text[]) AS u(id, ep, out)),
    done AS (UPDATE steps SET status = 'SUCCESS', error_json = NULL, finished_at_ms = $4, lease_expires_at_ms = NULL
      FROM u WHERE steps.id = u.id AND steps.status = 'RUNNING' AND steps.lease_owner = $5 AND steps.lease_epoch = u.ep
      RETURNING steps.id, steps.task_id, steps.step_id, steps.dependents),
    o AS (INSERT INTO step_outputs (step_row_id, output_json) SELECT done.id, u.out FROM done JOIN u ON u.id = done.id
      ON CONFLICT (step_row_id) DO UPDATE SET output_json = excluded.output_json),
    unl AS (UPDATE steps SET deps_open = steps.deps_open - x.n,
        status = CASE WHEN steps.deps_open <> x.n OR steps.status <> 'WAITING' THEN steps.status WHEN steps.not_before_ms > $4 THEN 'SCHEDULED'
          WHEN steps.concurrency_key IS NOT NULL THEN 'QUEUED' ELSE 'READY' END,
        ready_at_ms = CASE WHEN steps.deps_open = x.n AND steps.status = 'WAITING' THEN GREATEST($4, COALESCE(steps.not_before_ms, 0)) ELSE steps.ready_at_ms END
      FROM (SELECT e.task_id, e.to_step, COUNT(*)::int AS n FROM done JOIN edges e ON e.task_id = done.task_id AND e.from_step = done.step_id
        WHERE done.dependents > 0 GROUP BY e.task_id, e.to_step) AS x
      WHERE steps.task_id = x.task_id AND steps.step_id = x.to_step RETURNING 1),
    n AS (SELECT task_id, COUNT(*)::int AS closed FROM done GROUP BY task_id),
    lk AS (SELECT t.task_id, n.closed FROM n JOIN tasks t ON t.task_id = n.task_id ORDER BY t.task_id FOR UPDATE OF t),
    cl AS (UPDATE tasks SET steps_open = tasks.steps_open - lk.closed, updated_at_ms = $4,
        status = CASE WHEN tasks.steps_open > lk.closed THEN tasks.status WHEN tasks.dead_count > 0 THEN 'DEAD_LETTER'
          WHEN tasks.cancelled_count > 0 THEN 'CANCELLED' ELSE 'SUCCESS' END,
        finished_at_ms = CASE WHEN tasks.steps_open > lk.closed THEN tasks.finished_at_ms ELSE $4 END
      FROM lk WHERE tasks.task_id = lk.task_id AND tasks.status IN ('PENDING', 'RUNNING')
      RETURNING tasks.task_id, tasks.status, tasks.steps_open)
    SELECT done.id, done.task_id, NULL AS status, (SELECT COUNT(*) FROM unl)::int AS unlocked FROM done
    UNION ALL SELECT NULL, cl.task_id, cl.status, NULL FROM cl WHERE cl.steps_open <= 0`,
  retry: `UPDATE steps SET status = 'RETRY_WAIT', error_json = u.err, ready_at_ms = u.at, lease_expires_at_ms = NULL
    FROM unnest($1::bigint[], $2::int[], $3::text[], $4::bigint[]) AS u(id, ep, err, at)
    WHERE steps.id = u.id AND steps.status = 'RUNNING' AND steps.lease_owner = $5 AND steps.lease_epoch = u.ep
    RETURNING steps.id`,
  dead: `UPDATE steps SET status = 'DEAD_LETTER', error_json = u.err, finished_at_ms = $3, lease_expires_at_ms = NULL
    FROM unnest($1::bigint[], $2::int[], $5::text[]) AS u(id, ep, err)
    WHERE steps.id = u.id AND steps.status = 'RUNNING' AND steps.lease_owner = $4 AND steps.lease_epoch = u.ep
    RETURNING steps.id, steps.task_id, steps.step_id, (SELECT fail_fast FROM tasks t WHERE t.task_id = steps.task_id) AS fail_fast`,
  runningOfTask: `SELECT id, task_id, step_id, lease_epoch FROM steps WHERE task_id = $1 AND status = 'RUNNING'`,
  cancelOpen: `UPDATE steps SET status = 'CANCELLED', finished_at_ms = $2, lease_expires_at_ms = NULL,
      lease_epoch = CASE WHEN status = 'RUNNING' THEN lease_epoch + 1 ELSE lease_epoch END
    WHERE task_id = $1 AND status IN ('WAITING', 'SCHEDULED', 'QUEUED', 'THROTTLED', 'READY', 'RUNNING', 'RETRY_WAIT') RETURNING 1`,
  skipDependents: `WITH RECURSIVE down(step_id) AS (
        SELECT to_step FROM edges WHERE task_id = $1 AND from_step = $2
        UNION SELECT e.to_step FROM edges e JOIN down d ON e.from_step = d.step_id WHERE e.task_id = $1)
    UPDATE steps SET status = 'SKIPPED', finished_at_ms = $3
    WHERE task_id = $1 AND step_id IN (SELECT step_id FROM down) AND status IN ('WAITING', 'SCHEDULED', 'QUEUED', 'THROTTLED', 'READY', 'RETRY_WAIT') RETURNING 1`,
  release: `UPDATE steps SET status = 'READY', ready_at_ms = $3, lease_owner = NULL, lease_epoch = steps.lease_epoch + 1,
      lease_expires_at_ms = NULL, attempt = steps.attempt - 1
    FROM unnest($1::bigint[], $2::int[]) AS u(id, ep)
    WHERE steps.id = u.id AND steps.status = 'RUNNING' AND steps.lease_owner = $4 AND steps.lease_epoch = u.ep
    RETURNING steps.id`,
  /** Due retries and timed waits (delayed starts, rate-limit tokens) back to READY (QUEUED with a concurrency key); whether any step waits QUEUED. */
  releaseRetries: `WITH due AS (SELECT id FROM steps WHERE status = 'RETRY_WAIT' AND ready_at_ms <= $1 ORDER BY ready_at_ms LIMIT $2 FOR UPDATE SKIP LOCKED),
    timed AS (SELECT id FROM steps WHERE status IN ('SCHEDULED', 'THROTTLED') AND ready_at_ms <= $1 ORDER BY ready_at_ms LIMIT $2 FOR UPDATE SKIP LOCKED),
    r AS (UPDATE steps SET status = 'READY' FROM due WHERE steps.id = due.id RETURNING 1),
    t AS (UPDATE steps SET status = CASE WHEN steps.status = 'SCHEDULED' AND steps.concurrency_key IS NOT NULL THEN 'QUEUED' ELSE 'READY' END
      FROM timed WHERE steps.id = timed.id RETURNING steps.status)
    SELECT (SELECT COUNT(*) FROM r)::int + (SELECT COUNT(*) FROM t WHERE status = 'READY')::int AS ready,
      (EXISTS (SELECT 1 FROM steps WHERE status = 'QUEUED') OR EXISTS (SELECT 1 FROM t WHERE status = 'QUEUED')) AS queued`,
  /** Expired leases: READY again, or DEAD_LETTER when no attempt is left; the epoch moves on either way. */
  reclaimExpired: `WITH x AS (SELECT id, lease_owner AS from_node, lease_epoch AS from_epoch, lease_expires_at_ms AS expired_at FROM steps
        WHERE status = 'RUNNING' AND lease_expires_at_ms < $1 ORDER BY lease_expires_at_ms LIMIT $2 FOR UPDATE SKIP LOCKED)
    UPDATE steps s SET
      status = CASE WHEN s.attempt < s.max_attempts THEN 'READY' ELSE 'DEAD_LETTER' END,
      ready_at_ms = CASE WHEN s.attempt < s.max_attempts THEN $1 ELSE s.ready_at_ms END,
      lease_owner = CASE WHEN s.attempt < s.max_attempts THEN NULL ELSE s.lease_owner END,
      finished_at_ms = CASE WHEN s.attempt < s.max_attempts THEN s.finished_at_ms ELSE $1 END,
      error_json = CASE WHEN s.attempt < s.max_attempts THEN s.error_json ELSE json_build_object('name', 'LeaseLostError', 'code', $3::text,
        'message', format('lease of node "%s" expired on attempt %s of %s; no attempts left', s.lease_owner, s.attempt, s.max_attempts))::text END,
      lease_epoch = s.lease_epoch + 1, lease_expires_at_ms = NULL
    FROM x WHERE s.id = x.id
    RETURNING s.id, s.task_id, s.step_id, s.status, s.priority, (SELECT fail_fast FROM tasks t WHERE t.task_id = s.task_id) AS fail_fast,
      x.from_node, x.from_epoch, x.expired_at, s.lease_epoch AS to_epoch`,
  bumpCounter: `INSERT INTO counters (name, value) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = counters.value + excluded.value`,
  closeTasks: `UPDATE tasks SET steps_open = tasks.steps_open - d.closed, dead_count = tasks.dead_count + d.dead,
      cancelled_count = tasks.cancelled_count + d.cancelled, updated_at_ms = $5,
      status = CASE WHEN tasks.steps_open > d.closed THEN tasks.status WHEN tasks.dead_count + d.dead > 0 THEN 'DEAD_LETTER'
        WHEN tasks.cancelled_count + d.cancelled > 0 THEN 'CANCELLED' ELSE 'SUCCESS' END,
      finished_at_ms = CASE WHEN tasks.steps_open > d.closed THEN tasks.finished_at_ms ELSE $5 END
    FROM unnest($1::text[], $2::int[], $3::int[], $4::int[]) AS d(task_id, closed, dead, cancelled)
    WHERE tasks.task_id = d.task_id AND tasks.status IN ('PENDING', 'RUNNING')
    RETURNING tasks.task_id, tasks.status, tasks.steps_open`,
  /** The claim (see claimSql) and the tail that follows it, in one statement. */
  claim: claimSql(false),
  /** The claim of steps without a rate limit, with its tail: atomic alone, run without a transaction (see isClaimAlone). */
  claimUnrated: claimSql(false, "claim_pick_unrated"),
  /** A quota claim of one priority class (same index, equality on its first column). */
  claimClass: claimSql(true),
  /** The tail alone, when no claim ran. */
  tail: `SELECT ${tailSql(false)}`,
  /** The tail, and the earliest lease expiry. */
  workProbe: `SELECT ${tailSql(false)},
    (SELECT MIN(lease_expires_at_ms) FROM steps WHERE status = 'RUNNING') AS expires_at`,
  expireOwnedBy: `WITH x AS (SELECT id FROM steps WHERE status = 'RUNNING' AND lease_owner = ANY($1::text[]) ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED)
    UPDATE steps s SET lease_expires_at_ms = 0 FROM x WHERE s.id = x.id RETURNING s.task_id, s.step_id, s.lease_epoch, s.lease_owner`,
  ownershipEvents: `INSERT INTO ownership_events (at_ms, kind, task_id, step_id, node_id, from_node, lease_epoch, details_json)
    SELECT $1, u.kind, u.task_id, u.step_id, $2, u.owner, u.ep, u.details
    FROM unnest($3::text[], $4::text[], $5::text[], $6::int[], $7::text[], $8::text[]) AS u(task_id, step_id, owner, ep, kind, details)`,
} as const;

const q = statements("c", SQL);

interface ClaimRow extends RateRow {
  id: number; task_id: string; step_id: string; agent: string; depends_on_json: string; dependents: number; lease_epoch: number; attempt: number;
  max_attempts: number; base_backoff_ms: number; max_backoff_ms: number; timeout_ms: number | null; priority: number; trace_id: string;
  ready_at_ms: number; deadline_at_ms: number | null;
  input_json: string | null; deps_json: string | null; kv_json: string | null;
}

interface TailRow { retry_at: number | null; queued: boolean; rated: boolean; c0: boolean; c1: boolean; c2: boolean }

/**
 * What one store instance's last commit saw, so that the next can skip statements with nothing
 * to do: the earliest timed wait (0: not known yet, release retries), whether steps wait
 * QUEUED, and which priority classes are known to have READY steps (its own submissions, or
 * left by its last claim). A quota claim of a class that has none, or that no higher class
 * competes with, is skipped: the class-wide claim takes its share. A claim while some class has
 * them goes straight to the claim; otherwise a read (probe) first finds out whether to claim.
 */
export interface CommitHints {
  retryAt: number | null;
  queued: boolean;
  /** READY steps with a rate limit may wait (their claim takes tokens in the claim's transaction). */
  rated: boolean;
  ready: [boolean, boolean, boolean];
}

export function unknownHints(): CommitHints {
  return { retryAt: 0, queued: true, rated: true, ready: [false, false, false] };
}

/** A copy of `hints` as they stand: what a batch decides by, unmoved by commits running beside it. */
export function snapshotHints(hints: CommitHints): CommitHints {
  return { ...hints, ready: [...hints.ready] };
}

const rowId = (key: string): number => Number(key);

/** A retry, delayed start or rate-limit token the last tail saw is due at `nowMs`. */
function timedWaitDue(retryAt: number | null, nowMs: number): boolean {
  return retryAt !== null && retryAt <= nowMs;
}

/** True when a batch writes nothing (claims, retry release and reclaims only). */
export function isReadOnlyBatch(batch: CommitBatch): boolean {
  return batch.submissions.length + batch.renewals.length + batch.completions.length + batch.failures.length + batch.releases.length +
    (batch.kvWrites?.length ?? 0) + (batch.progress?.length ?? 0) === 0;
}

/**
 * A batch of plain submissions only (no dedupe, no step flow control) while no QUEUED step waits
 * for admission: applied, it is one statement (an idempotency key met again adds one read), atomic
 * on its own, so it needs no transaction around it.
 */
export function isOneStatement(batch: CommitBatch, hints: CommitHints): boolean {
  return isSubmitOnly(batch) && !hints.queued && batch.submissions.every((t) => !t.dedupe && !hasStepFlow(t));
}

/**
 * Successes that unlock nothing (no completed step has dependents) while no class is known to
 * have READY steps, none wait QUEUED and no timed wait is due, with nothing else in the batch
 * (light load): the completing statement is atomic alone, so it needs no transaction, and with
 * nothing to claim no claim follows it. A refused completion's conflict record follows in a
 * statement of its own.
 */
export function isLightCompletion(batch: CommitBatch, hints: CommitHints): boolean {
  return batch.completions.length > 0 && batch.completions.every((c) => c.dependents === 0) && isReadOnlyBatch({ ...batch, completions: [] }) &&
    batch.reclaimExpiredLimit === 0 && !hints.queued && !hints.ready.some(Boolean) && !timedWaitDue(hints.retryAt, batch.nowMs);
}

/**
 * A claim with nothing else to do (no writes, no reclaim, no due timed wait, none QUEUED), while at
 * most one priority class is known to have READY steps (so no quota claim runs) and none is known
 * to be rate-limited: the claim and its tail are one statement, atomic alone, so it needs no
 * transaction. It takes only steps without a rate limit (claim_pick_unrated), so a hint gone stale
 * never takes one without its token; its tail then says so, and the next claim is the full one.
 */
export function isClaimAlone(batch: CommitBatch, hints: CommitHints): boolean {
  return batch.claim !== null && batch.claim.limit > 0 && isReadOnlyBatch(batch) && batch.reclaimExpiredLimit === 0 &&
    !hints.queued && !hints.rated && hints.ready.filter(Boolean).length <= 1 &&
    (batch.releaseRetriesLimit === 0 || !timedWaitDue(hints.retryAt, batch.nowMs));
}

function isSubmitOnly(batch: CommitBatch): boolean {
  return batch.claim === null && batch.releaseRetriesLimit === 0 && batch.reclaimExpiredLimit === 0 && isReadOnlyBatch({ ...batch, submissions: [] });
}

/** A read outside any transaction: whether a write-free batch has anything to do, and the next retry time. */
export async function probe(db: Queryable, batch: CommitBatch, hints: CommitHints): Promise<{ busy: boolean; retryAtMs: number | null }> {
  const [p] = await q<TailRow & { expires_at: number | null }>(db, "workProbe", [batch.claim?.agents ?? null]);
  hints.retryAt = p!.retry_at;
  hints.queued = p!.queued;
  hints.rated = p!.rated;
  hints.ready = [p!.c0, p!.c1, p!.c2];
  const busy = (batch.claim !== null && batch.claim.limit > 0 && (hints.ready.some(Boolean) || p!.queued)) ||
    (batch.releaseRetriesLimit > 0 && timedWaitDue(p!.retry_at, batch.nowMs)) ||
    (batch.reclaimExpiredLimit > 0 && p!.expires_at !== null && p!.expires_at < batch.nowMs);
  return { busy, retryAtMs: p!.retry_at };
}

export function emptyResult(): CommitResult {
  return {
    submitted: [], refused: [], outcomes: [], cancelledRunning: [], reclaimed: 0, released: 0, kvResults: [], claimed: [],
    claimBacklog: [false, false, false], finishedTasks: [], nextRetryAtMs: null,
  };
}

/** One batch being applied inside a transaction of `db`. */
export class PgBatch {
  readonly result = emptyResult();
  /** Steps this batch made runnable (for the NOTIFY hint). */
  madeReady = 0;
  readonly #closing = new Map<string, [closed: number, dead: number, cancelled: number]>();
  #refusing: { ref: LeaseRef; operation: string }[] = [];
  /** This batch is a claim alone (isClaimAlone): no transaction around it, steps without a rate limit only. */
  #claimAlone = false;
  /** Quota picks of the claim per class, and the highest class the rest of it took (for countForced). */
  #quotaTaken = [0, 0, 0];
  #highestRest = -1;

  /**
   * @param careful each submission in a savepoint of its own (a batch whose fast path failed).
   * @param hints what the previous commit's tail saw; updated by this batch.
   * @param seen the hints this batch decides by: a snapshot taken when the store chose whether it
   *   runs in a transaction, so a commit running beside it (on another connection) cannot turn a
   *   one-statement batch into several statements outside a transaction.
   */
  constructor(readonly db: Queryable, readonly nowMs: number, readonly nodeId: string, readonly careful = true,
    readonly hints: CommitHints = unknownHints(), readonly seen: CommitHints = hints) {}

  /** Steps of this class are READY now: in the store's hints and in those this batch decides by. */
  #markReady(priority: number): void {
    this.hints.ready[priority] = true;
    this.seen.ready[priority] = true;
  }

  /** READY steps with a rate limit may wait now (see #markReady). */
  #markRated(): void {
    this.hints.rated = true;
    this.seen.rated = true;
  }

  /** Applies every part of `batch` in order (see CommitBatch). */
  async apply(batch: CommitBatch): Promise<CommitResult> {
    const light = isLightCompletion(batch, this.seen);
    this.#claimAlone = isClaimAlone(batch, this.seen);
    if (batch.submissions.length > 0) await this.submit(batch.submissions);
    if (batch.kvWrites && batch.kvWrites.length > 0) await this.kvWrites(batch);
    if (batch.progress && batch.progress.length > 0) {
      const p = batch.progress;
      await q(this.db, "progress", [p.map((x) => rowId(x.stepKey)), p.map((x) => x.leaseEpoch), p.map((x) => x.pct), p.map((x) => x.message), this.nodeId]);
    }
    if (batch.renewals.length > 0) await this.renew(batch.renewals, batch.leaseTimeoutMs);
    if (batch.completions.length > 0) await this.complete(batch);
    if (batch.failures.length > 0) await this.fail(batch.failures);
    if (batch.releases.length > 0) await this.release(batch.releases);
    let queued = this.seen.queued;
    // Due retries and timed waits: skipped while the last tail saw none due (a wait another node
    // adds meanwhile is seen by this batch's tail and released by the next commit).
    if (batch.releaseRetriesLimit > 0 && timedWaitDue(this.seen.retryAt, this.nowMs)) {
      const [r] = await q<{ ready: number; queued: boolean }>(this.db, "releaseRetries", [this.nowMs, batch.releaseRetriesLimit]);
      this.madeReady += r!.ready;
      queued ||= r!.queued;
    }
    if (batch.reclaimExpiredLimit > 0) await this.reclaimExpired(batch.reclaimExpiredLimit);
    // Slots free up when steps close or leases are reclaimed; newcomers queue on submission or release.
    if (queued || batch.submissions.some((t) => t.steps.some((s) => s.concurrency != null))) {
      const admitted = await admitQueued(this.db, this.nowMs, (taskId, reason) => this.cancelTask(taskId, reason));
      this.madeReady += admitted.admitted;
      this.hints.queued = admitted.queued;
    }
    await this.closeTasks();
    // Nothing became claimable and nothing was known to be: no claim, and the hints stand.
    if (light && this.madeReady === 0) {
      this.result.nextRetryAtMs = this.seen.retryAt;
      return this.result;
    }
    const agents = batch.claim?.agents ?? null;
    let tail = batch.claim && batch.claim.limit > 0 ? await this.claim(batch) : null;
    // A commit of plain submissions only (pipelined) leaves the tail to the group commit behind it.
    if (!tail && isSubmitOnly(batch) && !batch.submissions.some(hasStepFlow)) return this.result;
    tail ??= (await q<TailRow>(this.db, "tail", [agents]))[0]!;
    this.hints.retryAt = tail.retry_at;
    this.hints.queued = tail.queued;
    this.hints.rated = tail.rated;
    this.hints.ready = [tail.c0, tail.c1, tail.c2];
    this.result.nextRetryAtMs = tail.retry_at;
    if (batch.claim && this.result.claimed.length >= batch.claim.limit) this.result.claimBacklog = [tail.c0, tail.c1, tail.c2];
    const forced = countForced(this.#quotaTaken, this.#highestRest, this.result.claimBacklog);
    if (forced > 0) await q(this.db, "bumpCounter", ["low_starvation_count", forced]);
    return this.result;
  }

  async submit(tasks: NewTask[]): Promise<void> {
    // The fast path writes them all at once; should that fail, the store runs the whole batch
    // again carefully, where each submission is tried on its own.
    if (!this.careful) {
      this.result.submitted.push(...(await this.#insertTasks(tasks)));
      return;
    }
    await this.db.query("SAVEPOINT submissions");
    try {
      this.result.submitted.push(...(await this.#insertTasks(tasks)));
      await this.db.query("RELEASE SAVEPOINT submissions");
      return;
    } catch {
      await this.db.query("ROLLBACK TO SAVEPOINT submissions");
    }
    // One of them is bad: each on its own, so the others (and the rest of the batch) commit.
    for (const task of tasks) {
      try {
        this.result.submitted.push(...(await this.#insertTasks([task])));
        await this.db.query("RELEASE SAVEPOINT submissions");
      } catch (error) {
        await this.db.query("ROLLBACK TO SAVEPOINT submissions");
        const wrapped = new StoreError(`submission of task ${task.taskId} was not stored: ${(error as Error).message}`, { cause: error });
        this.result.submitted.push({ taskId: task.taskId, created: false, steps: 0, error: errorToWire(wrapped) });
      }
      await this.db.query("SAVEPOINT submissions");
    }
    await this.db.query("RELEASE SAVEPOINT submissions");
  }

  async #insertTasks(all: NewTask[]): Promise<SubmitOutcome[]> {
    // A dedupe key may name a task of the same batch: one at a time, in order.
    if (all.length > 1 && all.some((t) => t.dedupe)) {
      const out: SubmitOutcome[] = [];
      for (const t of all) out.push(...(await this.#insertTasks([t])));
      return out;
    }
    const early = new Map<string, SubmitOutcome>();
    for (const t of all) {
      if (!t.dedupe) continue;
      const [byKey] = t.idempotencyKey === null ? [] : await q<{ task_id: string; steps_total: number }>(this.db, "tasksByKeys", [[t.idempotencyKey]]);
      if (byKey) { early.set(t.taskId, { taskId: byKey.task_id, created: false, steps: byKey.steps_total }); continue; }
      const earlier = await dedupe(this.db, t, this.nowMs);
      if (earlier) early.set(t.taskId, earlier);
    }
    const tasks = early.size === 0 ? all : all.filter((t) => !early.has(t.taskId));
    const col = <T>(f: (t: NewTask) => T) => tasks.map(f);
    const inserted = new Set((await q<{ task_id: string }>(this.db, "insertTasks", [
      col((t) => t.taskId), col((t) => t.name), col((t) => t.priority), col((t) => t.idempotencyKey), col((t) => t.failFast),
      col((t) => t.traceId), col((t) => t.parentSpanId), col((t) => t.steps.length), this.nowMs, ...stepColumns(tasks),
    ])).map((r) => r.task_id));
    const keys = tasks.filter((t) => !inserted.has(t.taskId) && t.idempotencyKey !== null).map((t) => t.idempotencyKey!);
    const existing = new Map<string, { task_id: string; steps_total: number }>();
    if (keys.length > 0) for (const r of await q<{ idempotency_key: string; task_id: string; steps_total: number }>(this.db, "tasksByKeys", [keys])) existing.set(r.idempotency_key, r);
    const created = tasks.filter((t) => inserted.has(t.taskId));
    const flowing = created.filter(hasStepFlow);
    if (flowing.length > 0) await applyFlow(this.db, flowing, this.nowMs);
    for (const t of created) {
      const roots = t.steps.filter((s) => s.dependsOn.length === 0);
      if (roots.length === 0) continue;
      this.madeReady++;
      // Their classes have READY steps now: the claim behind them takes its quotas from these.
      if (!hasStepFlow(t)) for (const s of roots) this.#markReady(s.priority);
      if (t.steps.some((s) => s.rateLimit != null)) this.#markRated();
    }
    return all.map((t): SubmitOutcome => {
      const e = early.get(t.taskId);
      if (e) return e;
      if (inserted.has(t.taskId)) return { taskId: t.taskId, created: true, steps: t.steps.length };
      const found = t.idempotencyKey === null ? undefined : existing.get(t.idempotencyKey);
      if (!found) throw new StoreError(`task ${t.taskId} exists already`);
      return { taskId: found.task_id, created: false, steps: found.steps_total };
    });
  }

  async kvWrites(batch: CommitBatch): Promise<void> {
    const writes = batch.kvWrites!;
    const fenced = writes.filter((w) => w.ref).map((w) => w.ref!);
    const held = new Map<string, number>();
    if (fenced.length > 0) {
      for (const r of await q<{ id: number; lease_epoch: number }>(this.db, "fenceCheck", [fenced.map((f) => rowId(f.stepKey)), this.nodeId])) {
        held.set(String(r.id), r.lease_epoch);
      }
    }
    const latest = new Map<string, [ns: string, key: string, value: string | null, writer: string]>();
    for (const w of writes) {
      if (w.ref && held.get(w.ref.stepKey) !== w.ref.leaseEpoch) {
        this.#refusing.push({ ref: w.ref, operation: "checkpoint" });
        this.result.kvResults.push("refused");
        continue;
      }
      for (const e of w.entries) latest.set(`${w.namespace}\u0000${e.key}`, [w.namespace, e.key, e.valueJson, w.writer]);
      this.result.kvResults.push("ok");
    }
    await this.#flushRefusals();
    if (latest.size === 0) return;
    // A sequence, not a counter row: no row every node's writes would queue on.
    const [{ v }] = (await q<{ v: number }>(this.db, "kvVersion")) as [{ v: number }];
    const rows = [...latest.values()];
    await q(this.db, "kvUpsert", [rows.map((r) => r[0]), rows.map((r) => r[1]), rows.map((r) => r[2]), rows.map((r) => r[2] === null),
      rows.map(() => v), rows.map(() => this.nowMs), rows.map((r) => r[3])]);
  }

  async renew(refs: LeaseRef[], leaseTimeoutMs: number): Promise<void> {
    const ok = new Set((await q<{ id: number }>(this.db, "renew", [refs.map((r) => rowId(r.stepKey)), refs.map((r) => r.leaseEpoch),
      this.nowMs + leaseTimeoutMs, this.nodeId])).map((r) => String(r.id)));
    for (const r of refs) if (!ok.has(r.stepKey)) this.#refusing.push({ ref: r, operation: "heartbeat" });
    await this.#flushRefusals();
  }

  async complete(batch: CommitBatch): Promise<void> {
    const seen = new Set<string>();
    const unique = batch.completions.filter((c) => {
      if (seen.has(c.stepKey)) { this.#refusing.push({ ref: c, operation: "complete" }); return false; }
      seen.add(c.stepKey);
      return true;
    });
    const rows = await q<{ id: number | null; task_id: string; status: TaskStatus | null; unlocked: number | null }>(this.db, "complete", [
      unique.map((c) => rowId(c.stepKey)), unique.map((c) => c.leaseEpoch), unique.map((c) => c.outputJson), this.nowMs, this.nodeId,
    ]);
    const done = new Set<string>();
    for (const r of rows) {
      if (r.id === null) this.result.finishedTasks.push({ taskId: r.task_id, status: r.status! });
      else { done.add(String(r.id)); this.madeReady += done.size === 1 ? r.unlocked! : 0; }
    }
    for (const c of unique) {
      if (!done.has(c.stepKey)) { this.#refusing.push({ ref: c, operation: "complete" }); continue; }
      this.result.outcomes.push({ kind: "succeeded", ref: c });
    }
    await this.#flushRefusals();
  }

  async fail(failures: StepFailure[]): Promise<void> {
    const retries = failures.filter((f) => f.next.kind === "retry");
    const deads = failures.filter((f) => f.next.kind === "dead");
    if (retries.length > 0) {
      const ok = new Set((await q<{ id: number }>(this.db, "retry", [retries.map((f) => rowId(f.stepKey)), retries.map((f) => f.leaseEpoch),
        retries.map((f) => JSON.stringify(f.error)), retries.map((f) => (f.next as { atMs: number }).atMs), this.nodeId])).map((r) => String(r.id)));
      for (const f of retries) {
        if (!ok.has(f.stepKey)) { this.#refusing.push({ ref: f, operation: "fail" }); continue; }
        this.result.outcomes.push({ kind: "retrying", ref: f, atMs: (f.next as { atMs: number }).atMs, error: f.error });
      }
    }
    if (deads.length > 0) {
      const rows = await q<{ id: number; task_id: string; step_id: string; fail_fast: boolean }>(this.db, "dead", [
        deads.map((f) => rowId(f.stepKey)), deads.map((f) => f.leaseEpoch), this.nowMs, this.nodeId, deads.map((f) => JSON.stringify(f.error)),
      ]);
      const byId = new Map(rows.map((r) => [String(r.id), r]));
      for (const f of deads) {
        const row = byId.get(f.stepKey);
        if (!row) { this.#refusing.push({ ref: f, operation: "fail" }); continue; }
        await this.afterDead(row.task_id, row.step_id, row.fail_fast);
        this.result.outcomes.push({ kind: "dead", ref: f, error: f.error });
      }
    }
    await this.#flushRefusals();
  }

  /** Cancels every open step of a task (running ones are reported for abort); returns how many. */
  async #cancelOpen(taskId: string): Promise<number> {
    for (const r of await q<{ id: number; task_id: string; step_id: string; lease_epoch: number }>(this.db, "runningOfTask", [taskId])) {
      this.result.cancelledRunning.push({ stepKey: String(r.id), taskId: r.task_id, stepId: r.step_id, leaseEpoch: r.lease_epoch });
    }
    return (await q(this.db, "cancelOpen", [taskId, this.nowMs])).length;
  }

  /** Cancels a whole task from inside the batch (a concurrency strategy), keeping the reason. */
  async cancelTask(taskId: string, reason: string): Promise<void> {
    await setCancelReason(this.db, taskId, reason);
    const n = await this.#cancelOpen(taskId);
    if (n > 0) this.#close(taskId, n, 0, n);
  }

  /** A step just went DEAD_LETTER: skip its dependents, or cancel the whole task under failFast. */
  async afterDead(taskId: string, stepId: string, failFast: boolean): Promise<void> {
    if (failFast) {
      const cancelled = await this.#cancelOpen(taskId);
      this.#close(taskId, 1 + cancelled, 1, cancelled);
    } else {
      const skipped = (await q(this.db, "skipDependents", [taskId, stepId, this.nowMs])).length;
      this.#close(taskId, 1 + skipped, 1, 0);
    }
  }

  async release(refs: LeaseRef[]): Promise<void> {
    const ok = new Set((await q<{ id: number }>(this.db, "release", [refs.map((r) => rowId(r.stepKey)), refs.map((r) => r.leaseEpoch), this.nowMs, this.nodeId]))
      .map((r) => String(r.id)));
    for (const r of refs) {
      if (ok.has(r.stepKey)) this.result.released++;
      else this.#refusing.push({ ref: r, operation: "release" });
    }
    this.madeReady += this.result.released;
    await this.#flushRefusals();
  }

  async reclaimExpired(limit: number): Promise<number> {
    const rows = await q<{ id: number; task_id: string; step_id: string; status: string; priority: number; fail_fast: boolean } & ReclaimedLease>(this.db, "reclaimExpired",
      [this.nowMs, limit, ErrorCode.LEASE_LOST]);
    if (rows.length > 0) {
      const events = rows.map((r) => reclaimEvent(r, r.status));
      await q(this.db, "ownershipEvents", [this.nowMs, this.nodeId, rows.map((r) => r.task_id), rows.map((r) => r.step_id), rows.map((r) => r.from_node),
        rows.map((r) => r.from_epoch), events.map((e) => e.kind), events.map((e) => e.detailsJson)]);
    }
    for (const r of rows) {
      if (r.status === "DEAD_LETTER") await this.afterDead(r.task_id, r.step_id, r.fail_fast);
      else {
        this.madeReady++;
        // READY again in its class: the claim behind a reclaim (maintenance) goes straight to it.
        this.#markReady(r.priority);
      }
    }
    // Steps taken from DEAD nodes are counted as such (dead_owner_reclaimed_total), not as expired.
    const expired = rows.filter((r) => r.expired_at !== 0).length;
    if (expired > 0) await q(this.db, "bumpCounter", ["lease_expired_reclaimed_total", expired]);
    this.result.reclaimed += rows.length;
    return rows.length;
  }

  /** Ends the leases of up to `limit` steps of these nodes and reclaims them (recorded as ownership events by reclaimExpired). */
  async reclaimFromNodes(nodeIds: string[], limit: number): Promise<number> {
    const rows = await q<{ task_id: string; step_id: string; lease_epoch: number; lease_owner: string }>(this.db, "expireOwnedBy", [nodeIds, limit]);
    if (rows.length === 0) return 0;
    await q(this.db, "bumpCounter", ["dead_owner_reclaimed_total", rows.length]);
    // Their leases now end first in expiry order (0), so this reclaim takes exactly them.
    await this.reclaimExpired(rows.length);
    await this.closeTasks();
    return rows.length;
  }

  #close(taskId: string, closed: number, dead: number, cancelled: number): void {
    const d = this.#closing.get(taskId);
    if (d) { d[0] += closed; d[1] += dead; d[2] += cancelled; } else this.#closing.set(taskId, [closed, dead, cancelled]);
  }

  async closeTasks(): Promise<void> {
    if (this.#closing.size === 0) return;
    // Sorted: concurrent batches lock task rows in one order.
    const entries = [...this.#closing].sort((a, b) => (a[0] < b[0] ? -1 : 1));
    this.#closing.clear();
    const rows = await q<{ task_id: string; status: TaskStatus; steps_open: number }>(this.db, "closeTasks", [
      entries.map((e) => e[0]), entries.map((e) => e[1][0]), entries.map((e) => e[1][1]), entries.map((e) => e[1][2]), this.nowMs,
    ]);
    for (const r of rows) if (r.steps_open <= 0) this.result.finishedTasks.push({ taskId: r.task_id, status: r.status });
  }

  /** Claims for the batch; returns the tail of the last claim statement (null when it must be read again). */
  async claim(batch: CommitBatch): Promise<TailRow | null> {
    const { limit, quotas = [0, 0, 0] } = batch.claim!;
    const agents = batch.claim!.agents ?? null;
    const expiresAtMs = this.nowMs + batch.leaseTimeoutMs;
    const quotaRows: ClaimRow[] = [];
    const taken = [0, 0, 0];
    for (let c = 0; c < 2; c++) {
      const n = Math.min(quotas[c]!, limit - quotaRows.length);
      // A quota matters only while a higher class competes for the claim.
      if (n <= 0 || !this.seen.ready[c] || !this.seen.ready.some((ready, h) => ready && h > c)) continue;
      const rows = await q<ClaimRow>(this.db, "claimClass", [agents, n, this.nodeId, expiresAtMs, this.nowMs, c]);
      taken[c] = rows.length;
      quotaRows.push(...rows.sort(claimOrder));
    }
    let tail: TailRow | null = null;
    let rest: ClaimRow[] = [];
    if (limit > quotaRows.length) {
      const got = await q<ClaimRow & TailRow>(this.db, this.#claimAlone ? "claimUnrated" : "claim",
        [agents, limit - quotaRows.length, this.nodeId, expiresAtMs, this.nowMs]);
      tail = got[0]!;
      rest = got.filter((r) => r.id !== null).sort(claimOrder);
    }
    let rows = [...quotaRows, ...rest];
    if (rows.some((r) => r.rate_bucket !== null)) {
      const taken = await takeTokens(this.db, rows, this.nowMs, batch.claim!.rateLimitedMax ?? Infinity);
      for (const [name, n] of taken.byLimit) await q(this.db, "bumpCounter", [`rate_limited_total:${name}`, n]);
      if (taken.dropped.size > 0) {
        rows = rows.filter((r) => !taken.dropped.has(r.id));
        tail = null;
      }
    }
    for (const r of rows) this.result.claimed.push(toClaimed(r, expiresAtMs));
    if (rows.length > 0) {
      this.#quotaTaken = taken;
      this.#highestRest = rest.length > 0 ? rest[0]!.priority : -1;
    }
    return tail;
  }

  async #flushRefusals(): Promise<void> {
    if (this.#refusing.length === 0) return;
    const refusing = this.#refusing;
    this.#refusing = [];
    const rows = await q<{ task_id: string; step_id: string; expected_epoch: number; actual_epoch: number | null; operation: string }>(this.db, "refuse", [
      refusing.map((r) => r.ref.taskId), refusing.map((r) => r.ref.stepId), refusing.map((r) => r.ref.leaseEpoch),
      refusing.map((r) => rowId(r.ref.stepKey)), refusing.map((r) => r.operation), this.nodeId, this.nowMs,
    ]);
    for (const r of rows) {
      const conflict: LeaseConflict = {
        taskId: r.task_id, stepId: r.step_id, expectedLeaseEpoch: r.expected_epoch, actualLeaseEpoch: r.actual_epoch,
        nodeId: this.nodeId, operation: r.operation, atMs: this.nowMs,
      };
      this.result.refused.push(conflict);
    }
  }
}

/** The step, input and edge columns of the insertTasks statement ($10–$25). */
function stepColumns(tasks: NewTask[]): unknown[][] {
  const cols: unknown[][] = Array.from({ length: 16 }, () => []);
  for (const task of tasks) {
    const dependents = dependentCounts(task);
    for (const s of task.steps) {
      const row = [task.taskId, s.stepId, s.agent, s.priority, task.traceId, JSON.stringify(s.dependsOn), s.dependsOn.length,
        dependents.get(s.stepId) ?? 0, s.maxAttempts, s.baseBackoffMs, s.maxBackoffMs, s.timeoutMs, s.inputJson];
      row.forEach((v, i) => cols[i]!.push(v));
      for (const dep of s.dependsOn) { cols[13]!.push(task.taskId); cols[14]!.push(dep); cols[15]!.push(s.stepId); }
    }
  }
  return cols;
}

function claimOrder(a: ClaimRow, b: ClaimRow): number {
  return b.priority - a.priority || a.ready_at_ms - b.ready_at_ms || a.id - b.id;
}

function toClaimed(row: ClaimRow, leaseExpiresAtMs: number): ClaimedStep {
  return {
    stepKey: String(row.id), taskId: row.task_id, stepId: row.step_id, leaseEpoch: row.lease_epoch, agent: row.agent,
    payloadJson: `{"input":${row.input_json ?? "null"},"deps":{${row.deps_json ?? ""}},"kv":{${row.kv_json ?? ""}}${
      row.deadline_at_ms === null ? "" : `,"deadlineMs":${row.deadline_at_ms}`}}`,
    attempt: row.attempt, maxAttempts: row.max_attempts, deadlineAtMs: row.deadline_at_ms,
    baseBackoffMs: row.base_backoff_ms, maxBackoffMs: row.max_backoff_ms, timeoutMs: row.timeout_ms, priority: row.priority,
    traceId: row.trace_id, leaseExpiresAtMs, dependents: row.dependents,
  };
}
