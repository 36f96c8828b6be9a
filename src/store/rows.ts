import type { WireError } from "../errors.js";
import type { NewTask, StepRecord, StepStatus, TaskRecord, TaskStatus } from "./types.js";

/** A tasks row as either dialect returns it (fail_fast: BOOLEAN on PostgreSQL, 0/1 on SQLite). */
export interface TaskRow {
  task_id: string; name: string | null; status: TaskStatus; priority: number; idempotency_key: string | null; fail_fast: boolean | number;
  trace_id: string; created_at_ms: number; updated_at_ms: number; finished_at_ms: number | null;
  deadline_at_ms: number | null; cancel_reason: string | null; schedule_name: string | null;
}
export interface StepRow {
  step_id: string; agent: string; status: StepStatus; priority: number; attempt: number; max_attempts: number;
  depends_on_json: string; input_json: string; output_json: string | null; error_json: string | null; lease_owner: string | null;
  lease_epoch: number; lease_expires_at_ms: number | null; ready_at_ms: number | null; started_at_ms: number | null; finished_at_ms: number | null;
  progress_pct: number | null; progress_message: string | null; replays: number;
  not_before_ms: number | null; concurrency_key: string | null; concurrency_limit: number | null; rate_name: string | null;
}

export function toTaskRecord(r: TaskRow): TaskRecord {
  return {
    taskId: r.task_id, name: r.name, status: r.status, priority: r.priority, idempotencyKey: r.idempotency_key,
    failFast: r.fail_fast === true || r.fail_fast === 1, traceId: r.trace_id, createdAtMs: r.created_at_ms, updatedAtMs: r.updated_at_ms, finishedAtMs: r.finished_at_ms,
    deadlineAtMs: r.deadline_at_ms, cancelReason: r.cancel_reason, scheduleName: r.schedule_name,
  };
}

export function toStepRecord(r: StepRow): StepRecord {
  return {
    stepId: r.step_id, agent: r.agent, status: r.status, priority: r.priority, attempt: r.attempt, maxAttempts: r.max_attempts,
    dependsOn: JSON.parse(r.depends_on_json) as string[], input: JSON.parse(r.input_json),
    output: r.output_json === null ? null : JSON.parse(r.output_json), error: r.error_json === null ? null : (JSON.parse(r.error_json) as WireError),
    leaseOwner: r.lease_owner, leaseEpoch: r.lease_epoch, leaseExpiresAtMs: r.lease_expires_at_ms, readyAtMs: r.ready_at_ms,
    startedAtMs: r.started_at_ms, finishedAtMs: r.finished_at_ms, progressPct: r.progress_pct, progressMessage: r.progress_message,
    replays: r.replays, notBeforeMs: r.not_before_ms, concurrencyKey: r.concurrency_key, concurrencyLimit: r.concurrency_limit,
    rateLimit: r.rate_name,
  };
}

/** A new task's steps: how many of its steps wait on each (the `dependents` column). */
export function dependentCounts(task: NewTask): Map<string, number> {
  const counts = new Map<string, number>();
  for (const step of task.steps) for (const dep of step.dependsOn) counts.set(dep, (counts.get(dep) ?? 0) + 1);
  return counts;
}
