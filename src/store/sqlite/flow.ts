import type Database from "better-sqlite3";
import { DEDUPE_COUNTER, type NewTask, type SubmitOutcome } from "../types.js";
import type { Statements } from "./statements.js";

/** Statements of time and flow control (delays, concurrency keys, rate limits, dedupe), prepared once at open. */
const SQL = {
  /** Earliest due retry or timed wait, and whether any step waits for a concurrency slot: one cheap probe per commit. */
  probe: `SELECT (SELECT MIN(ready_at_ms) FROM steps WHERE status = 'RETRY_WAIT') AS retry_at,
      (SELECT MIN(ready_at_ms) FROM steps WHERE status IN ('SCHEDULED', 'THROTTLED')) AS timed_at,
      EXISTS (SELECT 1 FROM steps WHERE status = 'QUEUED') AS queued`,
  /** Params: now, limit. SCHEDULED steps with a concurrency key go on to wait for a slot. */
  releaseTimed: `UPDATE steps SET status = CASE WHEN status = 'SCHEDULED' AND concurrency_key IS NOT NULL THEN 'QUEUED' ELSE 'READY' END
    WHERE id IN (SELECT id FROM steps WHERE status IN ('SCHEDULED', 'THROTTLED') AND ready_at_ms <= ? ORDER BY ready_at_ms LIMIT ?)`,
  /**
   * Keys with QUEUED steps that a pass could change: the head (oldest QUEUED step) has a slot free,
   * or its strategy cancels. Keys are walked one index seek each (a skip scan of steps_queued),
   * not by reading every QUEUED step, and a full "queue" key costs two more seeks, no row read.
   */
  queuedKeys: `WITH RECURSIVE k(key) AS (
      SELECT (SELECT MIN(concurrency_key) FROM steps WHERE status = 'QUEUED')
      UNION ALL
      SELECT (SELECT MIN(concurrency_key) FROM steps WHERE status = 'QUEUED' AND concurrency_key > k.key) FROM k WHERE k.key IS NOT NULL)
    SELECT key AS k FROM (
      SELECT key, h.concurrency_limit AS lim, h.concurrency_strategy AS strategy,
        (SELECT COUNT(*) FROM steps WHERE concurrency_key = key AND status IN ('READY', 'RUNNING', 'RETRY_WAIT', 'THROTTLED')) AS held
      FROM k JOIN steps h ON h.id = (SELECT id FROM steps WHERE status = 'QUEUED' AND concurrency_key = key ORDER BY ready_at_ms, id LIMIT 1)
      WHERE key IS NOT NULL)
    WHERE held < lim OR strategy <> 'queue' LIMIT ?`,
  holders: `SELECT COUNT(*) AS n FROM steps WHERE concurrency_key = ? AND status IN ('READY', 'RUNNING', 'RETRY_WAIT', 'THROTTLED')`,
  queuedOf: `SELECT id, task_id, concurrency_limit AS lim, concurrency_strategy AS strategy FROM steps
    WHERE status = 'QUEUED' AND concurrency_key = ? ORDER BY ready_at_ms, id LIMIT ?`,
  oldestHolderTask: `SELECT task_id FROM steps WHERE concurrency_key = ? AND status IN ('READY', 'RUNNING', 'RETRY_WAIT', 'THROTTLED')
    ORDER BY COALESCE(started_at_ms, ready_at_ms), id LIMIT 1`,
  admit: `UPDATE steps SET status = 'READY', ready_at_ms = MAX(ready_at_ms, @now) WHERE id = @id AND status = 'QUEUED'`,
  bucket: `SELECT tat_ms FROM rate_buckets WHERE bucket = ?`,
  setBucket: `INSERT INTO rate_buckets (bucket, tat_ms) VALUES (?, ?) ON CONFLICT (bucket) DO UPDATE SET tat_ms = excluded.tat_ms`,
  /** A claimed step that found no token: back to waiting, its attempt and start not counted. */
  throttle: `UPDATE steps SET status = 'THROTTLED', ready_at_ms = @atMs, lease_owner = NULL, lease_expires_at_ms = NULL,
      attempt = attempt - 1, started_at_ms = NULL WHERE id = @id`,
  /** A claimed step this claim may not take after all: READY again, as if never claimed. */
  unclaim: `UPDATE steps SET status = 'READY', lease_owner = NULL, lease_expires_at_ms = NULL, attempt = attempt - 1,
      started_at_ms = NULL WHERE id = ?`,
  dedupeGet: `SELECT d.task_id, d.expires_at_ms, t.status, t.steps_total FROM dedupe_keys d JOIN tasks t ON t.task_id = d.task_id WHERE d.key = ?`,
  dedupeSet: `INSERT INTO dedupe_keys (key, task_id, expires_at_ms) VALUES (?, ?, ?)
    ON CONFLICT (key) DO UPDATE SET task_id = excluded.task_id, expires_at_ms = excluded.expires_at_ms`,
  startedSteps: `SELECT COUNT(*) AS n FROM steps WHERE task_id = ? AND (started_at_ms IS NOT NULL OR status NOT IN ('WAITING', 'SCHEDULED', 'QUEUED', 'READY'))`,
  replaceInput: `UPDATE step_inputs SET input_json = ? WHERE step_row_id = (SELECT id FROM steps WHERE task_id = ? AND step_id = ?)`,
  setCancelReason: `UPDATE tasks SET cancel_reason = COALESCE(cancel_reason, ?) WHERE task_id = ?`,
} as const;

export type FlowStatements = Record<keyof typeof SQL, Database.Statement>;

export function prepareFlow(db: Database.Database): FlowStatements {
  const out = {} as FlowStatements;
  for (const name of Object.keys(SQL) as (keyof typeof SQL)[]) out[name] = db.prepare(SQL[name]);
  return out;
}

/** Keys with QUEUED steps looked at per commit at most. */
const KEYS_PER_PASS = 500;
/** QUEUED steps of one key read at once, and looked at per commit at most. */
const QUEUED_PAGE = 32;
const STEPS_PER_KEY = 1_000;

/**
 * Admits QUEUED steps to READY while their key has free slots (a slot: READY, RUNNING, RETRY_WAIT
 * or THROTTLED), key by key, so a full key never holds up another. With "cancel-newest" a step
 * that finds its key full has its task cancelled; with "cancel-in-progress" the oldest holder's is.
 */
export function admitQueued(f: FlowStatements, now: number, cancelTask: (taskId: string, reason: string) => void): void {
  for (const { k } of f.queuedKeys.all(KEYS_PER_PASS) as { k: string }[]) {
    let held = (f.holders.get(k) as { n: number }).n;
    // A page at a time from the head: what a page admits or cancels leaves QUEUED, so the next page starts after it.
    for (let seen = 0, more = true; more && seen < STEPS_PER_KEY;) {
      const page = f.queuedOf.all(k, QUEUED_PAGE) as { id: number; task_id: string; lim: number; strategy: string }[];
      more = page.length === QUEUED_PAGE;
      for (const q of page) {
        seen++;
        if (held >= q.lim && q.strategy === "cancel-in-progress") {
          const victim = f.oldestHolderTask.get(k) as { task_id: string } | undefined;
          if (victim && victim.task_id !== q.task_id) {
            cancelTask(victim.task_id, "concurrency");
            held = (f.holders.get(k) as { n: number }).n;
          }
        }
        if (held < q.lim) {
          if (f.admit.run({ id: q.id, now }).changes > 0) held++;
          continue;
        }
        if (q.strategy === "cancel-newest") cancelTask(q.task_id, "concurrency");
        else {
          more = false;
          break;
        }
      }
    }
  }
}

export interface RateRow { id: number; rate_bucket: string | null; rate_name: string | null; rate_per_sec: number | null; rate_burst: number | null }

/**
 * Takes a token for each claimed row with a rate limit (GCRA, the token-bucket equivalent kept
 * as one "theoretical arrival time" per bucket). Rows without a token go THROTTLED until theirs
 * is due, spaced one emission interval apart; rows past `max` tokens are left READY unclaimed.
 * Returns the ids not claimed after all, and how many were throttled per limit.
 */
export function takeTokens(f: FlowStatements, rows: readonly RateRow[], now: number, max: number): { throttled: Set<number>; byLimit: Map<string, number> } {
  const throttled = new Set<number>();
  let taken = 0;
  const byLimit = new Map<string, number>();
  const tat = new Map<string, number>();
  const waiting = new Map<string, number>();
  for (const r of rows) {
    if (r.rate_bucket === null) continue;
    if (taken >= max) {
      f.unclaim.run(r.id);
      throttled.add(r.id);
      continue;
    }
    const interval = 1_000 / r.rate_per_sec!;
    const tolerance = (r.rate_burst! - 1) * interval;
    const t = Math.max(tat.get(r.rate_bucket) ?? (f.bucket.get(r.rate_bucket) as { tat_ms: number } | undefined)?.tat_ms ?? now, now);
    if (t - now <= tolerance + 1e-6) {
      tat.set(r.rate_bucket, t + interval);
      taken++;
      continue;
    }
    tat.set(r.rate_bucket, t);
    const k = waiting.get(r.rate_bucket) ?? 0;
    waiting.set(r.rate_bucket, k + 1);
    f.throttle.run({ id: r.id, atMs: Math.ceil(t - tolerance + k * interval) });
    throttled.add(r.id);
    byLimit.set(r.rate_name!, (byLimit.get(r.rate_name!) ?? 0) + 1);
  }
  for (const [bucket, t] of tat) f.setBucket.run(bucket, t);
  return { throttled, byLimit };
}

/**
 * A dedupe window for a submission: the earlier task's outcome when the window holds one
 * ("dropped", or "replaced" when its steps have not started), else null after recording the
 * new task as the key's holder (call before inserting it).
 */
export function dedupe(s: Statements, f: FlowStatements, task: NewTask, now: number): SubmitOutcome | null {
  const d = task.dedupe!;
  const existing = f.dedupeGet.get(d.key) as { task_id: string; expires_at_ms: number; status: string; steps_total: number } | undefined;
  if (existing && existing.expires_at_ms > now) {
    const outcome = { taskId: existing.task_id, created: false, steps: existing.steps_total };
    if (d.mode === "drop") {
      s.bumpCounter.run(`${DEDUPE_COUNTER}:dropped`, 1);
      return { ...outcome, deduplicated: "dropped" };
    }
    if (existing.status === "PENDING" && (f.startedSteps.get(existing.task_id) as { n: number }).n === 0) {
      for (const step of task.steps) f.replaceInput.run(step.inputJson, existing.task_id, step.stepId);
      s.bumpCounter.run(`${DEDUPE_COUNTER}:replaced`, 1);
      return { ...outcome, deduplicated: "replaced" };
    }
  }
  f.dedupeSet.run(d.key, task.taskId, now + d.windowMs);
  return null;
}
