import { ErrorCode } from "../../errors.js";
import type {
  ClaimedStep, CommitBatch, CommitResult, LeaseConflict, LeaseRef, NewTask, StepFailure, TaskStatus,
} from "../types.js";
import type { Statements } from "./statements.js";

interface ClaimRow {
  id: number; task_id: string; step_id: string; agent: string; input_json: string; depends_on_json: string;
  lease_epoch: number; attempt: number; max_attempts: number; base_backoff_ms: number; max_backoff_ms: number;
  timeout_ms: number | null; priority: number; trace_id: string;
}
interface ClosedRow { steps_open: number; dead_count: number; cancelled_count: number; fail_fast: number }
interface ExpiredRow { id: number; task_id: string; step_id: string; lease_epoch: number; attempt: number; max_attempts: number; lease_owner: string | null }

/** Applies one CommitBatch. Synchronous: the caller wraps it in one IMMEDIATE transaction. */
export function applyBatch(s: Statements, batch: CommitBatch): CommitResult {
  const now = batch.nowMs;
  const result: CommitResult = {
    submitted: [], refused: [], outcomes: [], cancelledRunning: [], reclaimed: 0, released: 0, claimed: [], finishedTasks: [], nextRetryAtMs: null,
  };
  const fence = (ref: LeaseRef) => ({ stepRowId: ref.stepRowId, nodeId: batch.nodeId, leaseEpoch: ref.leaseEpoch });

  const refuse = (ref: LeaseRef, operation: string) => {
    const row = s.currentEpoch.get(ref.stepRowId) as { lease_epoch: number } | undefined;
    const conflict: LeaseConflict = {
      taskId: ref.taskId, stepId: ref.stepId, expectedLeaseEpoch: ref.leaseEpoch,
      actualLeaseEpoch: row ? row.lease_epoch : null, nodeId: batch.nodeId, operation, atMs: now,
    };
    s.insertConflict.run(conflict);
    s.bumpCounter.run("lease_conflict_total", 1);
    result.refused.push(conflict);
  };

  const closeSteps = (taskId: string, closed: number, dead: number, cancelled: number) => {
    const row = s.closeSteps.get({ taskId, closed, dead, cancelled, now }) as ClosedRow | undefined;
    if (!row || row.steps_open > 0) return;
    const status: TaskStatus = row.dead_count > 0 ? "DEAD_LETTER" : row.cancelled_count > 0 ? "CANCELLED" : "SUCCESS";
    if (s.finishTask.run({ taskId, status, now }).changes > 0) result.finishedTasks.push({ taskId, status });
  };

  /** A step just went DEAD_LETTER: skip its dependents, or cancel the whole task under failFast. */
  const afterDead = (taskId: string, stepId: string, failFast: boolean) => {
    if (failFast) {
      for (const r of s.runningOfTask.all(taskId) as { id: number; task_id: string; step_id: string; lease_epoch: number }[]) {
        result.cancelledRunning.push({ stepRowId: r.id, taskId: r.task_id, stepId: r.step_id, leaseEpoch: r.lease_epoch });
      }
      const cancelled = s.cancelOpenSteps.run({ taskId, now }).changes;
      closeSteps(taskId, 1 + cancelled, 1, cancelled);
    } else {
      const skipped = s.skipDependents.run({ taskId, stepId, now }).changes;
      closeSteps(taskId, 1 + skipped, 1, 0);
    }
  };

  for (const task of batch.submissions) result.submitted.push(insertTask(s, task, now));

  for (const c of batch.completions) {
    if (s.completeStep.run({ ...fence(c), outputJson: c.outputJson, now }).changes === 0) { refuse(c, "complete"); continue; }
    s.unlockDependents.run({ taskId: c.taskId, stepId: c.stepId, now });
    closeSteps(c.taskId, 1, 0, 0);
    result.outcomes.push({ kind: "succeeded", ref: c });
  }

  for (const f of batch.failures) applyFailure(f);

  function applyFailure(f: StepFailure) {
    const errorJson = JSON.stringify(f.error);
    if (f.next.kind === "retry") {
      if (s.retryStep.run({ ...fence(f), errorJson, atMs: f.next.atMs }).changes === 0) return refuse(f, "fail");
      result.outcomes.push({ kind: "retrying", ref: f, atMs: f.next.atMs, error: f.error });
      return;
    }
    if (s.deadStep.run({ ...fence(f), errorJson, now }).changes === 0) return refuse(f, "fail");
    const failFast = (s.getTask.get(f.taskId) as { fail_fast: number }).fail_fast === 1;
    afterDead(f.taskId, f.stepId, failFast);
    result.outcomes.push({ kind: "dead", ref: f, error: f.error });
  }

  for (const r of batch.renewals) {
    if (s.renewLease.run({ ...fence(r), expiresAtMs: now + batch.leaseTimeoutMs }).changes === 0) refuse(r, "heartbeat");
  }

  for (const r of batch.releases) {
    if (s.releaseStep.run({ ...fence(r), now }).changes === 0) refuse(r, "release");
    else result.released++;
  }

  if (batch.releaseRetriesLimit > 0) s.releaseRetries.run(now, batch.releaseRetriesLimit);

  if (batch.reclaimExpiredLimit > 0) {
    for (const row of s.expiredLeases.all(now, batch.reclaimExpiredLimit) as ExpiredRow[]) {
      const ref = { stepRowId: row.id, leaseEpoch: row.lease_epoch, now };
      if (row.attempt < row.max_attempts) {
        if (s.reclaimStep.run(ref).changes > 0) result.reclaimed++;
        continue;
      }
      const errorJson = JSON.stringify({
        name: "LeaseLostError", code: ErrorCode.LEASE_LOST,
        message: `lease of node "${row.lease_owner}" expired on attempt ${row.attempt} of ${row.max_attempts}; no attempts left`,
      });
      if (s.reclaimDeadStep.run({ ...ref, errorJson }).changes === 0) continue;
      result.reclaimed++;
      const failFast = (s.getTask.get(row.task_id) as { fail_fast: number }).fail_fast === 1;
      afterDead(row.task_id, row.step_id, failFast);
    }
    if (result.reclaimed > 0) s.bumpCounter.run("lease_expired_reclaimed_total", result.reclaimed);
  }

  if (batch.claim && batch.claim.limit > 0) claim(s, batch, result);

  result.nextRetryAtMs = (s.nextRetryAt.get() as { at: number | null }).at;
  return result;
}

function insertTask(s: Statements, task: NewTask, now: number): { taskId: string; created: boolean; steps: number } {
  if (task.idempotencyKey !== null) {
    const existing = s.taskByKey.get(task.idempotencyKey) as { task_id: string; steps_total: number } | undefined;
    if (existing) return { taskId: existing.task_id, created: false, steps: existing.steps_total };
  }
  s.insertTask.run({
    taskId: task.taskId, name: task.name, priority: task.priority, idempotencyKey: task.idempotencyKey,
    failFast: task.failFast ? 1 : 0, traceId: task.traceId, parentSpanId: task.parentSpanId, stepsTotal: task.steps.length, now,
  });
  for (const step of task.steps) {
    s.insertStep.run({
      taskId: task.taskId, stepId: step.stepId, agent: step.agent, status: step.dependsOn.length === 0 ? "READY" : "WAITING",
      priority: step.priority, traceId: task.traceId, inputJson: step.inputJson, dependsOnJson: JSON.stringify(step.dependsOn),
      depsOpen: step.dependsOn.length, maxAttempts: step.maxAttempts, baseBackoffMs: step.baseBackoffMs,
      maxBackoffMs: step.maxBackoffMs, timeoutMs: step.timeoutMs, now,
    });
    for (const dep of step.dependsOn) s.insertEdge.run(task.taskId, dep, step.stepId);
  }
  return { taskId: task.taskId, created: true, steps: task.steps.length };
}

function claim(s: Statements, batch: CommitBatch, result: CommitResult): void {
  const { limit, picker } = batch.claim!;
  const candidates = [0, 1, 2].map((p) => (s.readyCandidates.all(p, limit) as { id: number }[]).map((r) => r.id));
  const { order, forced } = picker.pick([candidates[0]!.length, candidates[1]!.length, candidates[2]!.length], limit);
  if (forced > 0) s.bumpCounter.run("low_starvation_count", forced);
  const next = [0, 0, 0];
  const expiresAtMs = batch.nowMs + batch.leaseTimeoutMs;
  const started = new Set<string>();
  for (const p of order) {
    const id = candidates[p]![next[p]!++]!;
    const row = s.claimStep.get({ id, nodeId: batch.nodeId, expiresAtMs, now: batch.nowMs }) as ClaimRow | undefined;
    if (!row) continue;
    if (!started.has(row.task_id)) { s.startTask.run(batch.nowMs, row.task_id); started.add(row.task_id); }
    result.claimed.push(toClaimed(s, row, expiresAtMs));
  }
}

function toClaimed(s: Statements, row: ClaimRow, leaseExpiresAtMs: number): ClaimedStep {
  let deps = "";
  if (row.depends_on_json !== "[]") {
    const outputs = s.depOutputs.all(row.task_id, row.step_id) as { step_id: string; output_json: string | null }[];
    deps = outputs.map((o) => `${JSON.stringify(o.step_id)}:${o.output_json ?? "null"}`).join(",");
  }
  return {
    stepRowId: row.id, taskId: row.task_id, stepId: row.step_id, leaseEpoch: row.lease_epoch, agent: row.agent,
    payloadJson: `{"input":${row.input_json},"deps":{${deps}}}`, attempt: row.attempt, maxAttempts: row.max_attempts,
    baseBackoffMs: row.base_backoff_ms, maxBackoffMs: row.max_backoff_ms, timeoutMs: row.timeout_ms, priority: row.priority,
    traceId: row.trace_id, leaseExpiresAtMs,
  };
}
