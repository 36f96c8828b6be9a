import { DEDUPE_COUNTER, type NewTask, type SubmitOutcome } from "../types.js";
import { statements, type Queryable } from "./db.js";

/** Time and flow control on PostgreSQL: delayed starts, concurrency keys, rate-limit buckets, dedupe windows. */
const SQL = {
  /** Flow columns of freshly inserted steps, and where each starts waiting. */
  stepFlow: `UPDATE steps s SET not_before_ms = u.nb, deadline_at_ms = u.dl, concurrency_key = u.ck, concurrency_limit = u.cl,
      concurrency_strategy = u.cs, rate_name = u.rn, rate_bucket = u.rb, rate_per_sec = u.rps, rate_burst = u.rbu,
      status = CASE WHEN s.status <> 'READY' THEN s.status WHEN u.nb > $12 THEN 'SCHEDULED' WHEN u.ck IS NOT NULL THEN 'QUEUED' ELSE 'READY' END,
      ready_at_ms = GREATEST($12, COALESCE(u.nb, 0))
    FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::text[], $6::int[], $7::text[], $8::text[], $9::text[], $10::float8[], $11::int[])
      AS u(task_id, step_id, nb, dl, ck, cl, cs, rn, rb, rps, rbu)
    WHERE s.task_id = u.task_id AND s.step_id = u.step_id`,
  taskFlow: `UPDATE tasks t SET deadline_at_ms = u.dl, schedule_name = u.sn FROM unnest($1::text[], $2::bigint[], $3::text[]) AS u(task_id, dl, sn)
    WHERE t.task_id = u.task_id`,
  /** Takes (or keeps) the key: the row lock orders concurrent submissions of one key. Returns the holder. */
  dedupeClaim: `INSERT INTO dedupe_keys (key, task_id, expires_at_ms) VALUES ($1, $2, $3)
    ON CONFLICT (key) DO UPDATE SET task_id = CASE WHEN dedupe_keys.expires_at_ms <= $4 THEN excluded.task_id ELSE dedupe_keys.task_id END,
      expires_at_ms = CASE WHEN dedupe_keys.expires_at_ms <= $4 THEN excluded.expires_at_ms ELSE dedupe_keys.expires_at_ms END
    RETURNING task_id`,
  dedupeTake: `UPDATE dedupe_keys SET task_id = $2, expires_at_ms = $3 WHERE key = $1`,
  bumpCounter: `INSERT INTO counters (name, value) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = counters.value + excluded.value`,
  dedupeHolder: `SELECT t.status, t.steps_total,
      (SELECT COUNT(*) FROM steps s WHERE s.task_id = t.task_id AND (s.started_at_ms IS NOT NULL OR s.status NOT IN ('WAITING', 'SCHEDULED', 'QUEUED', 'READY')))::int AS started
    FROM tasks t WHERE t.task_id = $1 FOR UPDATE`,
  replaceInputs: `UPDATE step_inputs i SET input_json = u.input FROM steps s, unnest($2::text[], $3::text[]) AS u(step_id, input)
    WHERE s.task_id = $1 AND s.step_id = u.step_id AND i.step_row_id = s.id AND s.status IN ('WAITING', 'SCHEDULED', 'QUEUED', 'READY')`,
  /**
   * Keys with QUEUED steps that a pass could change: the head (oldest QUEUED step) has a slot free,
   * or its strategy cancels. Keys are walked one index seek each (a skip scan of steps_queued),
   * not by reading every QUEUED step. Read before the keys are locked: a key seen full here was
   * full in a committed state, and the transaction that frees a slot admits in its own pass.
   */
  queuedKeys: `WITH RECURSIVE k(key) AS (
      (SELECT concurrency_key FROM steps WHERE status = 'QUEUED' ORDER BY concurrency_key LIMIT 1)
      UNION ALL
      SELECT (SELECT concurrency_key FROM steps WHERE status = 'QUEUED' AND concurrency_key > k.key ORDER BY concurrency_key LIMIT 1)
      FROM k WHERE k.key IS NOT NULL)
    SELECT k.key AS k FROM k
      JOIN LATERAL (SELECT concurrency_limit AS lim, concurrency_strategy AS strategy FROM steps
        WHERE status = 'QUEUED' AND concurrency_key = k.key ORDER BY ready_at_ms, id LIMIT 1) h ON TRUE
    WHERE k.key IS NOT NULL AND (h.strategy <> 'queue' OR h.lim > (SELECT COUNT(*) FROM steps
      WHERE concurrency_key = k.key AND status IN ('READY', 'RUNNING', 'RETRY_WAIT', 'THROTTLED')))
    LIMIT $1`,
  /** Transaction-scoped locks (fine behind PgBouncer), one per key, taken in key order. */
  lockKeys: `SELECT pg_advisory_xact_lock(hashtextextended(k, 0)) FROM (SELECT k FROM unnest($1::text[]) AS k ORDER BY k) x`,
  holders: `SELECT concurrency_key AS k, COUNT(*)::int AS n FROM steps
    WHERE concurrency_key = ANY($1::text[]) AND status IN ('READY', 'RUNNING', 'RETRY_WAIT', 'THROTTLED') GROUP BY 1`,
  queuedOf: `SELECT id, task_id, concurrency_key AS k, concurrency_limit AS lim, concurrency_strategy AS strategy FROM steps
    WHERE status = 'QUEUED' AND concurrency_key = ANY($1::text[]) ORDER BY concurrency_key, ready_at_ms, id LIMIT 10000`,
  oldestHolders: `SELECT DISTINCT ON (concurrency_key) concurrency_key AS k, task_id FROM steps
    WHERE concurrency_key = ANY($1::text[]) AND status IN ('READY', 'RUNNING', 'RETRY_WAIT', 'THROTTLED')
    ORDER BY concurrency_key, COALESCE(started_at_ms, ready_at_ms), id`,
  admit: `UPDATE steps SET status = 'READY', ready_at_ms = GREATEST(ready_at_ms, $2) WHERE id = ANY($1::bigint[]) AND status = 'QUEUED' RETURNING 1`,
  setCancelReason: `UPDATE tasks SET cancel_reason = COALESCE(cancel_reason, $2) WHERE task_id = $1`,
  ensureBuckets: `INSERT INTO rate_buckets (bucket, tat_ms) SELECT b, 0 FROM unnest($1::text[]) AS b ON CONFLICT DO NOTHING`,
  /** Row locks: token takers of one bucket go one after another, on every node. */
  lockBuckets: `SELECT bucket, tat_ms FROM rate_buckets WHERE bucket = ANY($1::text[]) ORDER BY bucket FOR UPDATE`,
  setBuckets: `UPDATE rate_buckets b SET tat_ms = u.t FROM unnest($1::text[], $2::float8[]) AS u(bucket, t) WHERE b.bucket = u.bucket`,
  throttle: `UPDATE steps s SET status = 'THROTTLED', ready_at_ms = u.at, lease_owner = NULL, lease_expires_at_ms = NULL,
      attempt = s.attempt - 1, started_at_ms = NULL FROM unnest($1::bigint[], $2::bigint[]) AS u(id, at) WHERE s.id = u.id`,
  unclaim: `UPDATE steps SET status = 'READY', lease_owner = NULL, lease_expires_at_ms = NULL, attempt = attempt - 1, started_at_ms = NULL
    WHERE id = ANY($1::bigint[])`,
} as const;

const q = statements("f", SQL);

/** Keys with QUEUED steps looked at per commit at most. */
const KEYS_PER_PASS = 500;

export function hasStepFlow(task: NewTask): boolean {
  return task.deadlineAtMs != null || task.schedule !== undefined ||
    task.steps.some((s) => s.notBeforeMs != null || s.concurrency != null || s.rateLimit != null);
}

/** Writes the flow columns of inserted tasks that use flow control (plain tasks pay nothing). */
export async function applyFlow(db: Queryable, tasks: NewTask[], now: number): Promise<void> {
  const cols: unknown[][] = Array.from({ length: 11 }, () => []);
  for (const t of tasks) {
    for (const s of t.steps) {
      [t.taskId, s.stepId, s.notBeforeMs ?? null, t.deadlineAtMs ?? null, s.concurrency?.key ?? null, s.concurrency?.limit ?? null,
        s.concurrency?.strategy ?? null, s.rateLimit?.name ?? null, s.rateLimit?.bucket ?? null, s.rateLimit?.perSecond ?? null,
        s.rateLimit?.burst ?? null].forEach((v, i) => cols[i]!.push(v));
    }
  }
  await q(db, "stepFlow", [...cols, now]);
  await q(db, "taskFlow", [tasks.map((t) => t.taskId), tasks.map((t) => t.deadlineAtMs ?? null), tasks.map((t) => t.schedule?.name ?? null)]);
}

/** Adds `n` to a counter (flow control's counters: schedules fired and skipped, dedupe outcomes). */
export async function bumpCounter(db: Queryable, name: string, n: number): Promise<void> {
  await q(db, "bumpCounter", [name, n]);
}

/**
 * A dedupe window for a submission: the earlier task's outcome when the window holds one
 * ("dropped", or "replaced" while its steps have not started), else null with the new task
 * recorded as the key's holder (call before inserting it).
 */
export async function dedupe(db: Queryable, task: NewTask, now: number): Promise<SubmitOutcome | null> {
  const d = task.dedupe!;
  const [holder] = await q<{ task_id: string }>(db, "dedupeClaim", [d.key, task.taskId, now + d.windowMs, now]);
  if (holder!.task_id === task.taskId) return null;
  const [t] = await q<{ status: string; steps_total: number; started: number }>(db, "dedupeHolder", [holder!.task_id]);
  if (t) {
    const outcome = { taskId: holder!.task_id, created: false, steps: t.steps_total };
    if (d.mode === "drop") {
      await bumpCounter(db, `${DEDUPE_COUNTER}:dropped`, 1);
      return { ...outcome, deduplicated: "dropped" };
    }
    if (t.status === "PENDING" && t.started === 0) {
      await q(db, "replaceInputs", [holder!.task_id, task.steps.map((s) => s.stepId), task.steps.map((s) => s.inputJson)]);
      await bumpCounter(db, `${DEDUPE_COUNTER}:replaced`, 1);
      return { ...outcome, deduplicated: "replaced" };
    }
  }
  await q(db, "dedupeTake", [d.key, task.taskId, now + d.windowMs]);
  return null;
}

/**
 * Admits QUEUED steps to READY while their key has free slots (see the SQLite store's
 * admitQueued for the rules); `queued`: whether any step waited QUEUED. Keys are locked first (transaction advisory locks), then counted
 * in a later statement, so its snapshot sees what the previous holder of the lock committed.
 */
export async function admitQueued(db: Queryable, now: number, cancelTask: (taskId: string, reason: string) => Promise<void>): Promise<{ admitted: number; queued: boolean }> {
  const keys = (await q<{ k: string }>(db, "queuedKeys", [KEYS_PER_PASS])).map((r) => r.k);
  if (keys.length === 0) return { admitted: 0, queued: false };
  await q(db, "lockKeys", [keys]);
  const held = new Map((await q<{ k: string; n: number }>(db, "holders", [keys])).map((r) => [r.k, r.n]));
  const queued = await q<{ id: number; task_id: string; k: string; lim: number; strategy: string }>(db, "queuedOf", [keys]);
  let victims: Map<string, string> | null = null;
  const admit: number[] = [];
  const cancels = new Set<string>();
  const full = new Set<string>();
  for (const row of queued) {
    if (full.has(row.k) || cancels.has(row.task_id)) continue;
    let n = held.get(row.k) ?? 0;
    if (n >= row.lim && row.strategy === "cancel-in-progress") {
      victims ??= new Map((await q<{ k: string; task_id: string }>(db, "oldestHolders", [keys])).map((r) => [r.k, r.task_id]));
      const victim = victims.get(row.k);
      if (victim && victim !== row.task_id && !cancels.has(victim)) {
        cancels.add(victim);
        await cancelTask(victim, "concurrency");
        n = (await q<{ k: string; n: number }>(db, "holders", [[row.k]]))[0]?.n ?? 0;
        victims.delete(row.k);
      }
    }
    if (n < row.lim) {
      admit.push(row.id);
      held.set(row.k, n + 1);
    } else if (row.strategy === "cancel-newest") {
      cancels.add(row.task_id);
      await cancelTask(row.task_id, "concurrency");
    } else {
      full.add(row.k);
    }
  }
  return { admitted: admit.length > 0 ? (await q(db, "admit", [admit, now])).length : 0, queued: true };
}

export async function setCancelReason(db: Queryable, taskId: string, reason: string): Promise<void> {
  await q(db, "setCancelReason", [taskId, reason]);
}

export interface RateRow { id: number; rate_bucket: string | null; rate_name: string | null; rate_per_sec: number | null; rate_burst: number | null }

/**
 * Takes a token for each claimed row with a rate limit (GCRA; the bucket rows are locked, so
 * nodes take tokens one after another). Rows without a token go THROTTLED until theirs is due;
 * rows past `max` tokens are left READY unclaimed. Returns the ids not claimed after all, and
 * how many were throttled per limit.
 */
export async function takeTokens(db: Queryable, rows: readonly RateRow[], now: number, max: number): Promise<{ dropped: Set<number>; byLimit: Map<string, number> }> {
  const limited = rows.filter((r) => r.rate_bucket !== null);
  const buckets = [...new Set(limited.map((r) => r.rate_bucket!))];
  await q(db, "ensureBuckets", [buckets]);
  const tat = new Map((await q<{ bucket: string; tat_ms: number }>(db, "lockBuckets", [buckets])).map((r) => [r.bucket, Number(r.tat_ms)]));
  const dropped = new Set<number>();
  const byLimit = new Map<string, number>();
  const waiting = new Map<string, number>();
  const throttle: [number, number][] = [];
  const unclaim: number[] = [];
  let taken = 0;
  for (const r of limited) {
    if (taken >= max) { unclaim.push(r.id); dropped.add(r.id); continue; }
    const interval = 1_000 / r.rate_per_sec!;
    const tolerance = (r.rate_burst! - 1) * interval;
    const t = Math.max(tat.get(r.rate_bucket!) ?? now, now);
    if (t - now <= tolerance + 1e-6) {
      tat.set(r.rate_bucket!, t + interval);
      taken++;
      continue;
    }
    const k = waiting.get(r.rate_bucket!) ?? 0;
    waiting.set(r.rate_bucket!, k + 1);
    throttle.push([r.id, Math.ceil(t - tolerance + k * interval)]);
    dropped.add(r.id);
    byLimit.set(r.rate_name!, (byLimit.get(r.rate_name!) ?? 0) + 1);
  }
  await q(db, "setBuckets", [[...tat.keys()], [...tat.values()]]);
  if (throttle.length > 0) await q(db, "throttle", [throttle.map((x) => x[0]), throttle.map((x) => x[1])]);
  if (unclaim.length > 0) await q(db, "unclaim", [unclaim]);
  return { dropped, byLimit };
}
