import { ErrorCode, StoreError, errorToWire } from "../../errors.js";
import type {
  ClaimedStep, CommitBatch, CommitResult, LeaseConflict, LeaseRef, NewStep, NewTask, StepFailure, SubmitOutcome, TaskStatus,
} from "../types.js";
import type { Statements } from "./statements.js";
import { admitQueued, dedupe, takeTokens, type FlowStatements, type RateRow } from "./flow.js";
import { countForced, reclaimEvent } from "../claim.js";
import { dependentCounts } from "../rows.js";

/** The claim's agent filter as a statement parameter: a JSON array, or null for any agent. */
export function agentsParam(agents: readonly string[] | undefined): string | null {
  return agents ? JSON.stringify(agents) : null;
}

interface ClaimRow extends RateRow {
  id: number; task_id: string; step_id: string; agent: string; depends_on_json: string; dependents: number;
  lease_epoch: number; attempt: number; max_attempts: number; base_backoff_ms: number; max_backoff_ms: number;
  timeout_ms: number | null; priority: number; trace_id: string; deadline_at_ms: number | null;
}
interface ExpiredRow {
  id: number; task_id: string; step_id: string; lease_epoch: number; attempt: number; max_attempts: number; lease_owner: string | null; lease_expires_at_ms: number;
}

/** Inserts one task inside a savepoint (a nested better-sqlite3 transaction), so a failure leaves the batch whole. */
export type InsertTask = (s: Statements, f: FlowStatements, task: NewTask, now: number) => SubmitOutcome;
/** Inserts plain tasks (see isPlain) together inside a savepoint: all of them, or none and it throws. */
export type InsertPlainTasks = (s: Statements, tasks: readonly NewTask[], now: number) => void;
/** How a batch's submissions are inserted (each a nested transaction of the store's connection). */
export interface Inserts { one: InsertTask; plain: InsertPlainTasks }

/** The step row id behind an opaque step key. */
const rowId = (key: string): number => Number(key);

/** Applies one CommitBatch. Synchronous: the caller wraps it in one IMMEDIATE transaction. */
export function applyBatch(s: Statements, f: FlowStatements, batch: CommitBatch, inserts: Inserts): CommitResult {
  const now = batch.nowMs;
  const result: CommitResult = {
    submitted: [], refused: [], outcomes: [], cancelledRunning: [], reclaimed: 0, released: 0, kvResults: [], claimed: [],
    claimBacklog: [false, false, false], finishedTasks: [], nextRetryAtMs: null,
  };
  const fence = (ref: LeaseRef) => ({ id: rowId(ref.stepKey), nodeId: batch.nodeId, leaseEpoch: ref.leaseEpoch });

  const refuse = (ref: LeaseRef, operation: string) => {
    const row = s.currentEpoch.get(rowId(ref.stepKey)) as { lease_epoch: number } | undefined;
    const conflict: LeaseConflict = {
      taskId: ref.taskId, stepId: ref.stepId, expectedLeaseEpoch: ref.leaseEpoch,
      actualLeaseEpoch: row ? row.lease_epoch : null, nodeId: batch.nodeId, operation, atMs: now,
    };
    s.insertConflict.run(conflict);
    s.bumpCounter.run("lease_conflict_total", 1);
    result.refused.push(conflict);
  };

  // Task counters move once per task per batch, after every step change (see closeTasks).
  const closing = new Map<string, [closed: number, dead: number, cancelled: number]>();
  const closeSteps = (taskId: string, closed: number, dead: number, cancelled: number) => {
    const d = closing.get(taskId);
    if (d) { d[0] += closed; d[1] += dead; d[2] += cancelled; } else closing.set(taskId, [closed, dead, cancelled]);
  };

  /** Cancels every open step of a task (running ones are reported for abort); returns how many. */
  const cancelOpen = (taskId: string): number => {
    for (const r of s.runningOfTask.all(taskId) as { id: number; task_id: string; step_id: string; lease_epoch: number }[]) {
      result.cancelledRunning.push({ stepKey: String(r.id), taskId: r.task_id, stepId: r.step_id, leaseEpoch: r.lease_epoch });
    }
    return s.cancelOpenSteps.run({ taskId, now }).changes;
  };

  /** A step just went DEAD_LETTER: skip its dependents, or cancel the whole task under failFast. */
  const afterDead = (taskId: string, stepId: string, failFast: boolean) => {
    if (failFast) {
      const cancelled = cancelOpen(taskId);
      closeSteps(taskId, 1 + cancelled, 1, cancelled);
    } else {
      const skipped = s.skipDependents.run({ taskId, stepId, now }).changes;
      closeSteps(taskId, 1 + skipped, 1, 0);
    }
  };

  // Plain submissions go in with one statement per table; the others (and the plain ones, should
  // that fail) one by one, each in a savepoint of its own, so one bad submission fails alone.
  let plain: Set<NewTask> | null = null;
  const candidates = batch.submissions.length > 1 ? batch.submissions.filter(isPlain) : [];
  if (candidates.length > 1) {
    try {
      inserts.plain(s, candidates, now);
      plain = new Set(candidates);
    } catch {
      // inserted one by one below
    }
  }
  for (const task of batch.submissions) {
    if (plain?.has(task)) {
      result.submitted.push({ taskId: task.taskId, created: true, steps: task.steps.length });
      continue;
    }
    try {
      result.submitted.push(inserts.one(s, f, task, now));
    } catch (error) {
      const wrapped = new StoreError(`submission of task ${task.taskId} was not stored: ${(error as Error).message}`, { cause: error });
      result.submitted.push({ taskId: task.taskId, created: false, steps: 0, error: errorToWire(wrapped) });
    }
  }

  // Checkpoints before completions: a step's last checkpoint commits no later than its result.
  if (batch.kvWrites && batch.kvWrites.length > 0) {
    let version = 0;
    for (const w of batch.kvWrites) {
      if (w.ref && !s.fenceCheck.get(fence(w.ref))) {
        refuse(w.ref, "checkpoint");
        result.kvResults.push("refused");
        continue;
      }
      if (version === 0) version = (s.nextKvVersion.get() as { value: number }).value;
      for (const e of w.entries) {
        s.kvUpsert.run({ namespace: w.namespace, key: e.key, valueJson: e.valueJson, deleted: e.valueJson === null ? 1 : 0, version, now, writer: w.writer });
      }
      result.kvResults.push("ok");
    }
  }
  for (const p of batch.progress ?? []) s.progressStep.run({ ...fence(p), pct: p.pct, message: p.message });

  // Renewals before results: a failFast cancel in this batch must not turn a renewal into a conflict.
  for (const r of batch.renewals) {
    if (s.renewLease.run({ ...fence(r), expiresAtMs: now + batch.leaseTimeoutMs }).changes === 0) refuse(r, "heartbeat");
  }

  const unlocking: number[] = [];
  // One statement for every completion (a statement per row cost more than the row); the ones it did not return were fenced off.
  const completed = new Map<number, number>();
  if (batch.completions.length > 0) {
    const refs = JSON.stringify(batch.completions.map((c) => [rowId(c.stepKey), c.leaseEpoch]));
    for (const r of s.completeSteps.all({ refs, nodeId: batch.nodeId, now }) as { id: number; dependents: number }[]) completed.set(r.id, r.dependents);
  }
  const outputs: [number, string][] = [];
  for (const c of batch.completions) {
    const id = rowId(c.stepKey);
    const dependents = completed.get(id);
    if (dependents === undefined) { refuse(c, "complete"); continue; }
    outputs.push([id, c.outputJson]);
    if (dependents > 0) unlocking.push(id);
    closeSteps(c.taskId, 1, 0, 0);
    result.outcomes.push({ kind: "succeeded", ref: c });
  }
  if (outputs.length > 0) s.insertOutputs.run(JSON.stringify(outputs));
  if (unlocking.length > 0) s.unlockDependentsOf.run({ ids: JSON.stringify(unlocking), now });

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

  for (const r of batch.releases) {
    if (s.releaseStep.run({ ...fence(r), now }).changes === 0) refuse(r, "release");
    else result.released++;
  }

  // Cheap index probe first: most batches have nothing due, and the release UPDATEs are not free.
  const probe = f.probe.get() as { retry_at: number | null; timed_at: number | null; queued: number };
  let nextRetryAt = minOf(probe.retry_at, probe.timed_at);
  if (batch.releaseRetriesLimit > 0 && nextRetryAt !== null && nextRetryAt <= now) {
    if (probe.retry_at !== null && probe.retry_at <= now) s.releaseRetries.run(now, batch.releaseRetriesLimit);
    if (probe.timed_at !== null && probe.timed_at <= now && f.releaseTimed.run(now, batch.releaseRetriesLimit).changes > 0) probe.queued = 1;
    nextRetryAt = null;
  }

  if (batch.reclaimExpiredLimit > 0) {
    let expiredCount = 0;
    const record = (row: ExpiredRow, status: string) => {
      if (row.lease_expires_at_ms !== 0) expiredCount++;
      const e = reclaimEvent({ from_node: row.lease_owner, from_epoch: row.lease_epoch, expired_at: row.lease_expires_at_ms, to_epoch: row.lease_epoch + 1 }, status);
      s.ownershipEvent.run({
        atMs: now, kind: e.kind, taskId: row.task_id, stepId: row.step_id, nodeId: batch.nodeId, fromNode: row.lease_owner,
        leaseEpoch: row.lease_epoch, detailsJson: e.detailsJson,
      });
    };
    for (const row of s.expiredLeases.all(now, batch.reclaimExpiredLimit) as ExpiredRow[]) {
      const ref = { id: row.id, leaseEpoch: row.lease_epoch, now };
      if (row.attempt < row.max_attempts) {
        if (s.reclaimStep.run(ref).changes > 0) { result.reclaimed++; record(row, "READY"); }
        continue;
      }
      const errorJson = JSON.stringify({
        name: "LeaseLostError", code: ErrorCode.LEASE_LOST,
        message: `lease of node "${row.lease_owner}" expired on attempt ${row.attempt} of ${row.max_attempts}; no attempts left`,
      });
      if (s.reclaimDeadStep.run({ ...ref, errorJson }).changes === 0) continue;
      result.reclaimed++;
      record(row, "DEAD_LETTER");
      const failFast = (s.getTask.get(row.task_id) as { fail_fast: number }).fail_fast === 1;
      afterDead(row.task_id, row.step_id, failFast);
    }
    // Steps taken from DEAD nodes are counted as such (dead_owner_reclaimed_total), not as expired.
    if (expiredCount > 0) s.bumpCounter.run("lease_expired_reclaimed_total", expiredCount);
  }

  // Slots free up when steps close or leases are reclaimed; newcomers queue on submission or release.
  if (probe.queued || batch.submissions.some((t) => t.steps.some((st) => st.concurrency != null))) {
    admitQueued(f, now, (taskId, reason) => {
      f.setCancelReason.run(reason, taskId);
      const n = cancelOpen(taskId);
      if (n > 0) closeSteps(taskId, n, 0, n);
    });
  }

  if (closing.size > 0) closeTasks(s, closing, now, result);

  const throttled = batch.claim && batch.claim.limit > 0 ? claim(s, f, batch, result) : false;

  // The probe above stands unless this batch released, throttled, delayed or retried steps.
  if (nextRetryAt === null || throttled || result.outcomes.some((o) => o.kind === "retrying") ||
    batch.submissions.some((t) => t.steps.some((st) => st.notBeforeMs != null))) {
    const again = f.probe.get() as { retry_at: number | null; timed_at: number | null };
    nextRetryAt = minOf(again.retry_at, again.timed_at);
  }
  result.nextRetryAtMs = nextRetryAt;
  return result;
}

function minOf(a: number | null, b: number | null): number | null {
  return a === null ? b : b === null ? a : Math.min(a, b);
}

/** Applies the batch's step closures to the task counters; tasks left with no open step finish. */
function closeTasks(s: Statements, closing: Map<string, [number, number, number]>, now: number, result: CommitResult): void {
  const deltas: (string | number)[][] = [];
  for (const [taskId, d] of closing) deltas.push([taskId, d[0], d[1], d[2]]);
  for (const r of s.closeStepsMany.all({ deltas: JSON.stringify(deltas), now }) as { task_id: string; status: TaskStatus; steps_open: number }[]) {
    if (r.steps_open <= 0) result.finishedTasks.push({ taskId: r.task_id, status: r.status });
  }
}

/** Inserts a task (or returns the one its idempotency key or dedupe window names). Used by schedules too. */
export function insertTask(s: Statements, f: FlowStatements, task: NewTask, now: number): SubmitOutcome {
  if (task.idempotencyKey !== null) {
    const existing = s.taskByKey.get(task.idempotencyKey) as { task_id: string; steps_total: number } | undefined;
    if (existing) return { taskId: existing.task_id, created: false, steps: existing.steps_total };
  }
  if (task.dedupe) {
    const earlier = dedupe(s, f, task, now);
    if (earlier) return earlier;
  }
  s.insertTask.run({
    taskId: task.taskId, name: task.name, priority: task.priority, idempotencyKey: task.idempotencyKey,
    failFast: task.failFast ? 1 : 0, traceId: task.traceId, parentSpanId: task.parentSpanId, stepsTotal: task.steps.length, now,
  });
  const deadlineAtMs = task.deadlineAtMs ?? null;
  if (deadlineAtMs !== null || task.schedule) s.setTaskFlow.run({ taskId: task.taskId, deadlineAtMs, scheduleName: task.schedule?.name ?? null });
  const dependents = dependentCounts(task);
  for (const step of task.steps) {
    const row = {
      taskId: task.taskId, stepId: step.stepId, agent: step.agent, status: initialStatus(step),
      priority: step.priority, traceId: task.traceId, dependsOnJson: JSON.stringify(step.dependsOn),
      depsOpen: step.dependsOn.length, dependents: dependents.get(step.stepId) ?? 0, maxAttempts: step.maxAttempts, baseBackoffMs: step.baseBackoffMs,
      maxBackoffMs: step.maxBackoffMs, timeoutMs: step.timeoutMs, now,
    };
    const { lastInsertRowid } = hasFlow(step) || deadlineAtMs !== null ? s.insertFlowStep.run(flowRow(row, step, deadlineAtMs, now)) : s.insertStep.run(row);
    s.insertInput.run(lastInsertRowid, step.inputJson);
    for (const dep of step.dependsOn) s.insertEdge.run(task.taskId, dep, step.stepId);
  }
  return { taskId: task.taskId, created: true, steps: task.steps.length };
}

/** A submission with nothing to look up or set beyond its rows: no idempotency key, dedupe, deadline, schedule or step flow control. */
function isPlain(task: NewTask): boolean {
  return task.idempotencyKey === null && !task.dedupe && task.deadlineAtMs == null && !task.schedule && !task.steps.some(hasFlow);
}

/** Inserts plain tasks (isPlain), with one statement per table. Run it in a savepoint: it may fail part way. */
export function insertPlainTasks(s: Statements, tasks: readonly NewTask[], now: number): void {
  const taskRows: unknown[] = [];
  const stepRows: unknown[] = [];
  const inputs: unknown[] = [];
  const edges: unknown[] = [];
  for (const task of tasks) {
    taskRows.push([task.taskId, task.name, task.priority, task.failFast ? 1 : 0, task.traceId, task.parentSpanId, task.steps.length]);
    const dependents = dependentCounts(task);
    for (const step of task.steps) {
      stepRows.push([
        task.taskId, step.stepId, step.agent, initialStatus(step), step.priority, task.traceId,
        JSON.stringify(step.dependsOn), step.dependsOn.length, dependents.get(step.stepId) ?? 0, step.maxAttempts, step.baseBackoffMs,
        step.maxBackoffMs, step.timeoutMs,
      ]);
      inputs.push([task.taskId, step.stepId, step.inputJson]);
      for (const dep of step.dependsOn) edges.push([task.taskId, dep, step.stepId]);
    }
  }
  s.insertTasksMany.run({ tasks: JSON.stringify(taskRows), now });
  s.insertStepsMany.run({ steps: JSON.stringify(stepRows), now });
  s.insertInputsMany.run(JSON.stringify(inputs));
  if (edges.length > 0) s.insertEdgesMany.run(JSON.stringify(edges));
}

/** Where a new step starts before flow control: READY, or WAITING on its dependencies. */
function initialStatus(step: NewStep): "READY" | "WAITING" {
  return step.dependsOn.length === 0 ? "READY" : "WAITING";
}

function hasFlow(step: NewStep): boolean {
  return step.notBeforeMs != null || step.concurrency != null || step.rateLimit != null;
}

/** The insert parameters of a step with flow control: where it starts waiting, and its keys. */
function flowRow(row: { status: string; now: number }, step: NewStep, deadlineAtMs: number | null, now: number) {
  const notBeforeMs = step.notBeforeMs ?? null;
  const c = step.concurrency ?? null;
  const r = step.rateLimit ?? null;
  const status = row.status !== "READY" ? row.status : notBeforeMs !== null && notBeforeMs > now ? "SCHEDULED" : c ? "QUEUED" : "READY";
  return {
    ...row, status, readyAt: Math.max(now, notBeforeMs ?? 0), notBeforeMs, deadlineAtMs,
    concurrencyKey: c?.key ?? null, concurrencyLimit: c?.limit ?? null, concurrencyStrategy: c?.strategy ?? null,
    rateName: r?.name ?? null, rateBucket: r?.bucket ?? null, ratePerSec: r?.perSecond ?? null, rateBurst: r?.burst ?? null,
  };
}

/** Claims READY steps; returns whether a rate limit sent some back to wait. */
function claim(s: Statements, f: FlowStatements, batch: CommitBatch, result: CommitResult): boolean {
  const { limit, quotas = [0, 0, 0] } = batch.claim!;
  const agents = agentsParam(batch.claim!.agents);
  // Which classes have READY steps: the picks below read only those. A quota of a class no
  // higher class competes with is what the fill takes anyway, in the same order.
  const probe = s.readyClasses.get({ agents }) as { c0: number; c1: number; c2: number };
  const has = [probe.c0 === 1, probe.c1 === 1, probe.c2 === 1];
  if (!has[0] && !has[1] && !has[2]) return false;
  const ids: number[] = [];
  const taken = [0, 0, 0];
  for (let c = 0; c < 2 && ids.length < limit; c++) {
    if (quotas[c]! <= 0 || !has[c] || !(has[c + 1] || has[2])) continue;
    const before = ids.length;
    for (const r of s.readyOfClass.all({ priority: c, limit: Math.min(quotas[c]!, limit - ids.length), offset: 0, agents }) as { id: number }[]) ids.push(r.id);
    taken[c] = ids.length - before;
  }
  let highest = -1;
  for (let c = 2; c >= 0 && ids.length < limit; c--) {
    if (!has[c]) continue;
    const before = ids.length;
    for (const r of s.readyOfClass.all({ priority: c, limit: limit - ids.length, offset: taken[c], agents }) as { id: number }[]) ids.push(r.id);
    if (ids.length > before) highest = Math.max(highest, c);
  }
  if (ids.length === limit) {
    const left = s.readyClasses.get({ agents }) as { c0: number; c1: number; c2: number };
    result.claimBacklog = [left.c0 === 1, left.c1 === 1, left.c2 === 1];
  }
  const forced = countForced(taken, highest, result.claimBacklog);
  if (forced > 0) s.bumpCounter.run("low_starvation_count", forced);
  if (ids.length === 0) return false;
  const expiresAtMs = batch.nowMs + batch.leaseTimeoutMs;
  const idsJson = JSON.stringify(ids);
  let rows = s.claimSteps.all({ ids: idsJson, nodeId: batch.nodeId, expiresAtMs, now: batch.nowMs }) as ClaimRow[];
  let throttled = false;
  if (rows.some((r) => r.rate_bucket !== null)) {
    const taken = takeTokens(f, rows, batch.nowMs, batch.claim!.rateLimitedMax ?? Infinity);
    for (const [name, n] of taken.byLimit) s.bumpCounter.run(`rate_limited_total:${name}`, n);
    throttled = taken.throttled.size > 0;
    if (throttled) rows = rows.filter((r) => !taken.throttled.has(r.id));
  }
  if (rows.length === 0) return throttled;
  const inputs = new Map<number, string>();
  for (const r of s.inputsOf.all(idsJson) as { id: number; input_json: string }[]) inputs.set(r.id, r.input_json);
  const byId = new Map<number, ClaimRow>();
  const tasks = new Set<string>();
  const withDeps: number[] = [];
  for (const row of rows) {
    byId.set(row.id, row);
    tasks.add(row.task_id);
    if (row.depends_on_json !== "[]") withDeps.push(row.id);
  }
  s.startTasks.run({ ids: JSON.stringify([...tasks]), now: batch.nowMs });
  const deps = new Map<number, string>();
  if (withDeps.length > 0) {
    for (const o of s.depOutputsMany.all(JSON.stringify(withDeps)) as { for_id: number; step_id: string; output_json: string | null }[]) {
      const entry = `${JSON.stringify(o.step_id)}:${o.output_json ?? "null"}`;
      const prev = deps.get(o.for_id);
      deps.set(o.for_id, prev === undefined ? entry : `${prev},${entry}`);
    }
  }
  const kv = new Map<string, string>();
  for (const e of s.kvOfTasks.all(JSON.stringify([...tasks])) as { namespace: string; key: string; value_json: string }[]) {
    const entry = `${JSON.stringify(e.key)}:${e.value_json}`;
    const prev = kv.get(e.namespace);
    kv.set(e.namespace, prev === undefined ? entry : `${prev},${entry}`);
  }
  // Dispatch in claim order, not the UPDATE's.
  for (const id of ids) {
    const row = byId.get(id);
    if (row) result.claimed.push(toClaimed(row, inputs.get(id) ?? "null", deps.get(id) ?? "", kv.get(row.task_id) ?? "", expiresAtMs));
  }
  return throttled;
}

function toClaimed(row: ClaimRow, input: string, deps: string, kv: string, leaseExpiresAtMs: number): ClaimedStep {
  return {
    stepKey: String(row.id), taskId: row.task_id, stepId: row.step_id, leaseEpoch: row.lease_epoch, agent: row.agent,
    payloadJson: `{"input":${input},"deps":{${deps}},"kv":{${kv}}${row.deadline_at_ms === null ? "" : `,"deadlineMs":${row.deadline_at_ms}`}}`,
    attempt: row.attempt, maxAttempts: row.max_attempts, deadlineAtMs: row.deadline_at_ms,
    baseBackoffMs: row.base_backoff_ms, maxBackoffMs: row.max_backoff_ms, timeoutMs: row.timeout_ms, priority: row.priority,
    traceId: row.trace_id, leaseExpiresAtMs, dependents: row.dependents,
  };
}
