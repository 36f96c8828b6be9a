import type { StepRecord, TaskRecord, TaskWithSteps } from "../store/types.js";
import { priorityFromInt } from "./workflow.js";

/** A task as the CLI, the console and exports print it (CONTRACT.md `task`). */
export function taskView(task: TaskWithSteps) {
  return { ...taskSummaryView(task), steps: task.steps.map(stepView) };
}

/** A task without its steps (`tasks`). */
export function taskSummaryView(t: TaskRecord) {
  return {
    taskId: t.taskId,
    name: t.name,
    status: t.status,
    priority: priorityFromInt(t.priority),
    createdAtMs: t.createdAtMs,
    updatedAtMs: t.updatedAtMs,
    finishedAtMs: t.finishedAtMs,
    idempotencyKey: t.idempotencyKey,
    failFast: t.failFast,
    traceId: t.traceId,
    deadlineAtMs: t.deadlineAtMs,
    cancelReason: t.cancelReason,
    scheduleName: t.scheduleName,
  };
}

export function stepView(s: StepRecord) {
  return {
    stepId: s.stepId,
    agent: s.agent,
    status: s.status,
    priority: priorityFromInt(s.priority),
    attempt: s.attempt,
    maxAttempts: s.maxAttempts,
    dependsOn: s.dependsOn,
    input: s.input,
    output: s.output,
    error: s.error,
    leaseOwner: s.leaseOwner,
    leaseEpoch: s.leaseEpoch,
    leaseExpiresAtMs: s.leaseExpiresAtMs,
    startedAtMs: s.startedAtMs,
    finishedAtMs: s.finishedAtMs,
    progressPct: s.progressPct,
    progressMessage: s.progressMessage,
    replays: s.replays,
    notBeforeMs: s.notBeforeMs,
    concurrencyKey: s.concurrencyKey,
    rateLimit: s.rateLimit,
    ...waitingView(s),
  };
}

/** Why a step that has not started waits, and until when if that is known. */
export function waitingView(s: StepRecord): { waitingFor: string | null; waitingUntilMs: number | null } {
  const at = (ms: number | null) => (ms === null ? "?" : new Date(ms).toISOString());
  switch (s.status) {
    case "WAITING": return { waitingFor: `dependencies: ${s.dependsOn.join(", ")}`, waitingUntilMs: null };
    case "SCHEDULED": return { waitingFor: `scheduled until ${at(s.readyAtMs)}`, waitingUntilMs: s.readyAtMs };
    case "QUEUED": return { waitingFor: `concurrency key "${s.concurrencyKey}" full (limit ${s.concurrencyLimit})`, waitingUntilMs: null };
    case "THROTTLED": return { waitingFor: `rate limit "${s.rateLimit}" until ${at(s.readyAtMs)}`, waitingUntilMs: s.readyAtMs };
    case "RETRY_WAIT": return { waitingFor: `retry backoff until ${at(s.readyAtMs)}`, waitingUntilMs: s.readyAtMs };
    case "READY": return { waitingFor: "a free worker slot on a node serving agent \"" + s.agent + "\"", waitingUntilMs: null };
    default: return { waitingFor: null, waitingUntilMs: null };
  }
}

/** The DAG of a task (`workflow`). */
export function workflowView(task: TaskWithSteps) {
  return { taskId: task.taskId, status: task.status, steps: task.steps.map(stepView), edges: task.edges };
}
