import { loadavg } from "node:os";
import { monitorEventLoopDelay, performance, type IntervalHistogram } from "node:perf_hooks";
import type { EngineEventMap, RelayMesh } from "../index.js";
import { DurationHistogram, type LatencySummary } from "./histogram.js";
import type { Workload } from "./workload.js";

/** One point of a run's time series: the figures of the interval that ended at `tMs`. */
export interface Sample {
  /** End of the interval, ms since measuring began. */
  tMs: number;
  intervalMs: number;
  /** Cumulative counts at `tMs`. */
  submitted: number;
  completed: number;
  submittedPerSec: number;
  completedPerSec: number;
  /** Tasks that finished in the interval not SUCCESS. */
  failedTasks: number;
  /** Step attempts that failed in the interval (retried or not). */
  failedAttempts: number;
  /** Submitted, not yet finished. */
  inFlight: number;
  /** End-to-end latency of the tasks finished in the interval; null when none did. */
  latencyMs: Omit<LatencySummary, "mean" | "count"> | null;
  rssMb: number;
  heapUsedMb: number;
  /** CPU time of this process (every thread) over the interval, in % of one core. */
  cpuPct: number;
  eventLoopDelayP99Ms: number | null;
  /** The machine's 1-minute load average at `tMs` (work of other processes shows here). */
  loadAvg1: number;
}

/** Running totals handed to live displays with each sample. */
export interface LiveFigures {
  elapsedMs: number;
  submitted: number;
  completed: number;
  /** Completed per second since measuring began. */
  overallPerSec: number;
  /** End-to-end latency percentiles of every task finished so far. */
  p50Ms: number | null;
  p99Ms: number | null;
  /** Tasks not SUCCESS so far (submissions refused included). */
  failedTasks: number;
  failedAttempts: number;
}

/** Per step of the workflow: how long it waited to be handed to an agent, ran, and waited for its commit. */
export interface StepFigures {
  stepId: string;
  /** From ready (submission committed, or last dependency succeeded) to handed to its agent; first attempts. */
  queueWaitMs: LatencySummary | null;
  /** Agent run time of successful attempts. */
  runMs: LatencySummary | null;
  /** From the agent's result to the committed success (group commit); first attempts. */
  commitMs: LatencySummary | null;
}

/** Failures, by kind: the error code of failed step attempts, and the end state of tasks that did not succeed. */
export interface FailureFigures {
  /** Failed step attempts by error code (or error name when it has no code). */
  byKind: Record<string, number>;
  attemptsFailed: number;
  /** Of which retried. */
  retried: number;
  /** Tasks that did not end SUCCESS, by status (`UNFINISHED`: still open at the end; `SUBMIT_FAILED`: not accepted). */
  tasks: Record<string, number>;
  /** Up to 5 distinct messages, one per kind. */
  examples: { kind: string; message: string }[];
}

type Pending =
  | { type: "started"; at: number; stepId: string; attempt: number }
  | { type: "succeeded"; at: number; stepId: string; attempt: number; durationMs: number }
  | { type: "finished"; at: number; status: string };

interface TaskState {
  /** When the task was due (open loop: its scheduled time) or its submit call began (closed loop). */
  dueAt: number;
  readyAt: Float64Array;
  startedAt: Float64Array;
  depsLeft: Int32Array;
}

/** Events of unknown tasks are kept this long in case their submit call has not returned yet. */
const EARLY_EVENT_TTL_MS = 30_000;

/**
 * Listens to an engine's events and measures one run: end-to-end latency per task, per-step
 * queue wait / run / commit time, failures by kind, and a time series sampled every
 * `intervalMs` (throughput, latency percentiles, memory, CPU). Memory stays constant per
 * finished task (histograms), so runs may last hours.
 */
export class RunRecorder {
  readonly latency = new DurationHistogram();
  readonly series: Sample[] = [];
  readonly statuses = new Map<string, number>();
  readonly #mesh: RelayMesh;
  readonly #w: Workload;
  readonly #intervalMs: number;
  readonly #onSample: ((s: Sample, live: LiveFigures) => void) | undefined;
  readonly #onFinished: () => void;
  readonly #steps: { queue: DurationHistogram; run: DurationHistogram; commit: DurationHistogram }[];
  readonly #stepIndex: Map<string, number>;
  readonly #open = new Map<string, TaskState>();
  readonly #early = new Map<string, { firstAt: number; events: Pending[] }>();
  readonly #interval = new DurationHistogram();
  readonly #failures = new Map<string, number>();
  readonly #examples = new Map<string, string>();
  readonly #loopDelay: IntervalHistogram = monitorEventLoopDelay({ resolution: 10 });
  #attemptsFailed = 0;
  #retried = 0;
  #submitted = 0;
  #submitFailed = 0;
  #completed = 0;
  #lastFinishAt = 0;
  #t0 = 0;
  #last = { at: 0, submitted: 0, completed: 0, failedTasks: 0, failedAttempts: 0, cpu: process.cpuUsage() };
  #failedTasks = 0;
  #timer: NodeJS.Timeout | null = null;

  readonly #listeners = {
    started: (e: EngineEventMap["step:started"]) => this.#event(e.taskId, { type: "started", at: performance.now(), stepId: e.stepId, attempt: e.attempt }),
    succeeded: (e: EngineEventMap["step:succeeded"]) =>
      this.#event(e.taskId, { type: "succeeded", at: performance.now(), stepId: e.stepId, attempt: e.attempt, durationMs: e.durationMs }),
    failed: (e: EngineEventMap["step:failed"]) => this.#stepFailed(e),
    finished: (e: EngineEventMap["task:finished"]) => this.#event(e.taskId, { type: "finished", at: performance.now(), status: e.status }),
  };

  constructor(mesh: RelayMesh, workload: Workload, o: { intervalMs: number; onSample?: ((s: Sample, live: LiveFigures) => void) | undefined; onFinished: () => void }) {
    this.#mesh = mesh;
    this.#w = workload;
    this.#intervalMs = o.intervalMs;
    this.#onSample = o.onSample;
    this.#onFinished = o.onFinished;
    this.#stepIndex = new Map(workload.stepIds.map((id, i) => [id, i]));
    this.#steps = workload.stepIds.map(() => ({ queue: new DurationHistogram(), run: new DurationHistogram(), commit: new DurationHistogram() }));
  }

  get submitted(): number { return this.#submitted; }
  get submitFailed(): number { return this.#submitFailed; }
  get completed(): number { return this.#completed; }
  get lastFinishAt(): number { return this.#lastFinishAt; }
  get startedAt(): number { return this.#t0; }

  /** Starts listening and sampling; measuring begins now. */
  start(): void {
    const m = this.#mesh;
    m.on("step:started", this.#listeners.started).on("step:succeeded", this.#listeners.succeeded);
    m.on("step:failed", this.#listeners.failed).on("task:finished", this.#listeners.finished);
    this.#t0 = performance.now();
    this.#last = { at: this.#t0, submitted: 0, completed: 0, failedTasks: 0, failedAttempts: 0, cpu: process.cpuUsage() };
    this.#loopDelay.enable();
    this.#timer = setInterval(() => this.#sample(), this.#intervalMs);
  }

  /** Stops listening and takes the last (partial) sample. Idempotent. */
  stop(): void {
    if (this.#timer === null) return;
    clearInterval(this.#timer);
    this.#timer = null;
    if (performance.now() - this.#last.at >= 1) this.#sample();
    this.#loopDelay.disable();
    const m = this.#mesh;
    m.off("step:started", this.#listeners.started).off("step:succeeded", this.#listeners.succeeded);
    m.off("step:failed", this.#listeners.failed).off("task:finished", this.#listeners.finished);
  }

  /** A submission was committed: its task is ours from now on. */
  submittedTask(taskId: string, dueAt: number, ackAt: number): void {
    this.#submitted++;
    const n = this.#w.stepIds.length;
    const state: TaskState = { dueAt, readyAt: new Float64Array(n), startedAt: new Float64Array(n), depsLeft: Int32Array.from(this.#w.depCounts) };
    for (let i = 0; i < n; i++) if (state.depsLeft[i] === 0) state.readyAt[i] = ackAt;
    this.#open.set(taskId, state);
    const early = this.#early.get(taskId);
    if (early) {
      this.#early.delete(taskId);
      for (const e of early.events) this.#apply(taskId, state, e);
    }
  }

  submitFailedTask(error: unknown): void {
    this.#submitFailed++;
    this.#countFailure(kindOf(error), (error as Error)?.message ?? String(error));
  }

  /** Up to `limit` open tasks due before `before` (performance.now() time), oldest first. */
  openTasksDueBefore(before: number, limit: number): string[] {
    const ids: string[] = [];
    for (const [id, state] of this.#open) {
      if (state.dueAt >= before || ids.length >= limit) break;
      ids.push(id);
    }
    return ids;
  }

  /** A task found finished in the store (another process committed it, so no event came here). */
  finishedElsewhere(taskId: string, status: string, at: number): void {
    const state = this.#open.get(taskId);
    if (state) this.#finish(taskId, state, status, at);
  }

  /** Tasks still open (submitted, not finished). */
  get inFlight(): number {
    return this.#open.size;
  }

  steps(): StepFigures[] {
    return this.#w.stepIds.map((stepId, i) => {
      const s = this.#steps[i]!;
      return { stepId, queueWaitMs: s.queue.summary(), runMs: s.run.summary(), commitMs: s.commit.summary() };
    });
  }

  failures(): FailureFigures {
    const tasks: Record<string, number> = Object.create(null);
    for (const [status, n] of this.statuses) if (status !== "SUCCESS") tasks[status] = n;
    if (this.#open.size > 0) tasks.UNFINISHED = this.#open.size;
    if (this.#submitFailed > 0) tasks.SUBMIT_FAILED = this.#submitFailed;
    return {
      byKind: recordOf(this.#failures), attemptsFailed: this.#attemptsFailed, retried: this.#retried, tasks,
      examples: [...this.#examples].slice(0, 5).map(([kind, message]) => ({ kind, message })),
    };
  }

  #stepFailed(e: EngineEventMap["step:failed"]): void {
    this.#attemptsFailed++;
    if (e.willRetry) this.#retried++;
    this.#countFailure(e.error.code ?? e.error.name, e.error.message);
  }

  #countFailure(kind: string, message: string): void {
    this.#failures.set(kind, (this.#failures.get(kind) ?? 0) + 1);
    if (!this.#examples.has(kind) && this.#examples.size < 5) this.#examples.set(kind, message.slice(0, 500));
  }

  #event(taskId: string, e: Pending): void {
    const state = this.#open.get(taskId);
    if (state) return this.#apply(taskId, state, e);
    // Ours before its submit call returned, or another process's task in an in-place run.
    const early = this.#early.get(taskId);
    if (early) early.events.push(e);
    else this.#early.set(taskId, { firstAt: e.at, events: [e] });
  }

  #apply(taskId: string, state: TaskState, e: Pending): void {
    if (e.type === "finished") return this.#finish(taskId, state, e.status, e.at);
    const i = this.#stepIndex.get(e.stepId);
    if (i === undefined) return;
    const figures = this.#steps[i]!;
    if (e.type === "started") {
      if (e.attempt === 1 && state.startedAt[i] === 0) {
        state.startedAt[i] = e.at;
        figures.queue.record(Math.max(0, e.at - state.readyAt[i]!));
      }
      return;
    }
    figures.run.record(e.durationMs);
    if (e.attempt === 1 && state.startedAt[i]! > 0) figures.commit.record(Math.max(0, e.at - state.startedAt[i]! - e.durationMs));
    for (const d of this.#w.dependents[i]!) if (--state.depsLeft[d]! === 0) state.readyAt[d] = e.at;
  }

  #finish(taskId: string, state: TaskState, status: string, at: number): void {
    this.#open.delete(taskId);
    const ms = at - state.dueAt;
    this.latency.record(ms);
    this.#interval.record(ms);
    this.#completed++;
    this.#lastFinishAt = at;
    if (status !== "SUCCESS") this.#failedTasks++;
    this.statuses.set(status, (this.statuses.get(status) ?? 0) + 1);
    this.#onFinished();
  }

  #sample(): void {
    const now = performance.now();
    const last = this.#last;
    const seconds = (now - last.at) / 1000;
    const cpu = process.cpuUsage(last.cpu);
    const mem = process.memoryUsage();
    const i = this.#interval.summary();
    const delay = this.#loopDelay.count > 0 ? this.#loopDelay.percentile(99) / 1e6 : null;
    const sample: Sample = {
      tMs: Math.round(now - this.#t0), intervalMs: Math.round(now - last.at),
      submitted: this.#submitted, completed: this.#completed,
      submittedPerSec: (this.#submitted - last.submitted) / seconds, completedPerSec: (this.#completed - last.completed) / seconds,
      failedTasks: this.#failedTasks - last.failedTasks, failedAttempts: this.#attemptsFailed - last.failedAttempts,
      inFlight: this.#open.size,
      latencyMs: i ? { p50: i.p50, p90: i.p90, p95: i.p95, p99: i.p99, max: i.max } : null,
      rssMb: mem.rss / 2 ** 20, heapUsedMb: mem.heapUsed / 2 ** 20,
      cpuPct: ((cpu.user + cpu.system) / 1000 / (now - last.at)) * 100,
      eventLoopDelayP99Ms: delay, loadAvg1: loadavg()[0]!,
    };
    this.#interval.reset();
    this.#loopDelay.reset();
    this.#last = { at: now, submitted: this.#submitted, completed: this.#completed, failedTasks: this.#failedTasks, failedAttempts: this.#attemptsFailed, cpu: process.cpuUsage() };
    for (const [id, e] of this.#early) if (now - e.firstAt > EARLY_EVENT_TTL_MS) this.#early.delete(id);
    this.series.push(sample);
    this.#onSample?.(sample, {
      elapsedMs: now - this.#t0, submitted: this.#submitted, completed: this.#completed,
      overallPerSec: this.#completed / ((now - this.#t0) / 1000), p50Ms: this.latency.percentile(50), p99Ms: this.latency.percentile(99),
      failedTasks: this.#failedTasks + this.#submitFailed, failedAttempts: this.#attemptsFailed,
    });
  }
}

/** A Map as a JSON object without a prototype (its keys may come from agents' errors). */
export function recordOf(map: ReadonlyMap<string, number>): Record<string, number> {
  const out: Record<string, number> = Object.create(null);
  for (const [k, v] of map) out[k] = v;
  return out;
}

function kindOf(error: unknown): string {
  const code = (error as { code?: unknown })?.code;
  return typeof code === "string" ? code : (error as Error)?.name ?? "Error";
}
