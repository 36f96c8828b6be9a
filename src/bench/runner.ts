import { availableParallelism } from "node:os";
import { randomBytes } from "node:crypto";
import { performance } from "node:perf_hooks";
import { z } from "zod";
import { InvalidOptionsError, RelayMesh, type WorkflowSpec } from "../index.js";
import { redact } from "../store/open.js";
import { TERMINAL_TASK_STATUSES } from "../store/types.js";
import type { LatencySummary } from "./histogram.js";
import { machineFacts, relaymeshVersion } from "./machine.js";
import type { BenchmarkReport, StopReason } from "./report.js";
import { RunRecorder, recordOf, type LiveFigures, type Sample } from "./recorder.js";
import { stabilityOf } from "./stability.js";
import { BENCHMARK_SHAPES, resolveWorkload, type Workload, type WorkloadSpec } from "./workload.js";

export { BENCHMARK_SHAPES, FANOUT_WIDTH, type BenchmarkShape } from "./workload.js";
export type { BenchmarkReport, StopReason } from "./report.js";
export const BENCHMARK_MODES = ["enqueue-then-drain", "concurrent"] as const;
export type BenchmarkMode = (typeof BENCHMARK_MODES)[number];

/** Longest run accepted (timers are bounded by what the runtime honours, 2^31-1 ms). */
const MAX_RUN_MS = 7 * 24 * 3600 * 1000;

/** Options of `runBenchmark()`. */
export const BenchmarkOptionsSchema = z.strictObject({
  /** Folder of the root to run in (created when missing): its agents and settings are used. Use a scratch one: its store keeps every task. */
  root: z.string().min(1),
  /**
   * Store URL (as `RelayMesh.open({ store })`).
   * @default the root's SQLite store
   */
  store: z.string().min(1).optional(),
  /**
   * Tasks (workflows) to submit; with `durationMs` as well, whichever comes first ends submitting.
   * @default 1000, or unlimited when `durationMs` is given
   */
  tasks: z.number().int().min(1).max(10_000_000).optional(),
  /**
   * Submit for this long (ms from the first measured submission), then drain.
   * @default undefined (until `tasks` are submitted)
   */
  durationMs: z.number().positive().max(MAX_RUN_MS).optional(),
  /**
   * Workflow shape of the built-in workloads, every step on `agent`: `single` (one step), `chain`
   * (A→B→C), `diamond` (A→(B,C)→D), `fanout` (A→20 parallel steps→Z). Not with `workflow`.
   * @default "single"
   */
  shape: z.enum(BENCHMARK_SHAPES).default("single"),
  /**
   * Agent of every step of the built-in shapes (one the root's registry knows). Not with `workflow`.
   * @default "echo"
   */
  agent: z.string().min(1).default("echo"),
  /**
   * Priority of every task (a workflow's steps keep their own).
   * @default the workflow's, else "normal"
   */
  priority: z.enum(["high", "normal", "low"]).optional(),
  /**
   * Size of each step's input in the built-in shapes: a string of this many ASCII characters.
   * @default 64
   */
  inputSize: z.number().int().min(0).max(10 * 1024 * 1024).default(64),
  /**
   * A workflow (the JSON of a workflow file) every task submits, instead of a built-in shape; its
   * own agents, inputs and retries apply. An `idempotencyKey` in it is made unique per task.
   * @default undefined
   */
  workflow: z.record(z.string(), z.unknown()).optional(),
  /**
   * Step attempts running at once (the engine's `concurrency`).
   * @default 8
   */
  concurrency: z.number().int().min(1).max(10_000).default(8),
  /**
   * Closed loop: this many submissions (tasks submitted and not yet committed) in flight.
   * @default concurrency
   */
  inFlight: z.number().int().min(1).max(100_000).optional(),
  /**
   * Open loop: submit at this fixed rate (tasks per second) whatever the engine's pace; latency
   * counts from each task's scheduled time, so a stalled submitter cannot hide queueing.
   * `concurrent` mode only; not with `inFlight`.
   * @default undefined (closed loop)
   */
  rateLimitPerSec: z.number().positive().max(1_000_000).optional(),
  /**
   * Cap on the whole run, in seconds from the first measured submission: past it, submitting
   * stops, the engine is closed and the report counts what had finished (the rest as `UNFINISHED`).
   * @default 300, or the duration plus 300
   */
  maxSeconds: z.number().positive().max(MAX_RUN_MS / 1000).optional(),
  /**
   * `enqueue-then-drain`: open with `work: false`, submit everything (8 submissions in flight),
   * then `start()` and drain; throughput is measured over the drain alone.
   * `concurrent`: work while submitting; throughput is measured from the first submission to the last finish.
   * @default "concurrent"
   */
  mode: z.enum(BENCHMARK_MODES).default("concurrent"),
  /**
   * Tasks of the same workload run to completion before measuring starts (they start worker
   * threads and script processes, warm caches); not counted. `concurrent` mode only.
   * @default 0
   */
  warmupTasks: z.number().int().min(0).max(1_000_000).default(0),
  /**
   * SQLite durability for this run; overrides the root's settings file.
   * @default undefined (the root's setting, itself "full" by default)
   */
  durability: z.enum(["full", "normal"]).optional(),
  /**
   * Name given to every task (replacing the workflow's), to tag them, e.g. for purging a run made
   * in a real store.
   * @default undefined
   */
  taskName: z.string().min(1).max(200).optional(),
  /**
   * Other processes may run these tasks (an in-place run on a shared store): also look in the
   * store, every 250 ms, for tasks that finished without an event here. Their latency is then
   * known to within that interval.
   * @default false
   */
  watchStore: z.boolean().default(false),
  /**
   * Identifies the run in its report and in its tasks' idempotency keys.
   * @default 12 random hex digits
   */
  runId: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/).optional(),
  /**
   * Interval of the time series (and of `onSample`).
   * @default 1000
   */
  sampleIntervalMs: z.number().int().min(50).max(3_600_000).default(1_000),
  /**
   * Aborting it stops submitting; the run drains what was submitted and reports (Ctrl-C).
   * @default undefined
   */
  stopSignal: z.instanceof(AbortSignal).optional(),
  /**
   * Aborting it stops waiting for the drain: the engine is closed at once and the rest counts as `UNFINISHED`.
   * @default undefined
   */
  abandonSignal: z.instanceof(AbortSignal).optional(),
  /**
   * Called after every finished task with the number finished so far and the number requested
   * (Infinity for a run by duration). Runs inside the engine's event dispatch: keep it cheap.
   * @default undefined
   */
  onProgress: z.custom<(done: number, total: number) => void>((v) => typeof v === "function", "must be a function").optional(),
  /**
   * Called once warm-up is over, as measuring (and submitting) begins.
   * @default undefined
   */
  onMeasuring: z.custom<() => void>((v) => typeof v === "function", "must be a function").optional(),
  /**
   * Called with each point of the time series as it is taken (live displays).
   * @default undefined
   */
  onSample: z.custom<(sample: Sample, live: LiveFigures) => void>((v) => typeof v === "function", "must be a function").optional(),
}).superRefine((o, ctx) => {
  if (o.rateLimitPerSec !== undefined && o.mode !== "concurrent") {
    ctx.addIssue({ code: "custom", path: ["rateLimitPerSec"], message: `rateLimitPerSec needs mode "concurrent" (mode is "${o.mode}")` });
  }
  if (o.rateLimitPerSec !== undefined && o.inFlight !== undefined) {
    ctx.addIssue({ code: "custom", path: ["inFlight"], message: "inFlight (closed loop) and rateLimitPerSec (open loop) exclude each other" });
  }
  if (o.warmupTasks > 0 && o.mode !== "concurrent") {
    ctx.addIssue({ code: "custom", path: ["warmupTasks"], message: `warmupTasks needs mode "concurrent" (mode is "${o.mode}")` });
  }
  if (o.mode !== "concurrent" && o.tasks === undefined) {
    ctx.addIssue({ code: "custom", path: ["tasks"], message: `mode "${o.mode}" needs a task count` });
  }
});
export type BenchmarkOptions = z.input<typeof BenchmarkOptionsSchema>;
type ResolvedBenchmarkOptions = z.output<typeof BenchmarkOptionsSchema>;

/** How often an in-place run looks in the store for tasks finished by other processes. */
const STORE_POLL_MS = 250;

/** Submissions in flight during the enqueue phase of `enqueue-then-drain`. */
const ENQUEUE_IN_FLIGHT = 8;

/** The workload of a run's options (validates nothing against the root; the engine does at submit). */
export function workloadOf(o: Pick<ResolvedBenchmarkOptions, "workflow" | "shape" | "agent" | "inputSize" | "priority">): WorkloadSpec {
  return o.workflow !== undefined
    ? { kind: "workflow", workflow: o.workflow as WorkflowSpec, priority: o.priority }
    : { kind: "shape", shape: o.shape, agent: o.agent, inputSize: o.inputSize, priority: o.priority };
}

/**
 * Runs a benchmark against the engine's public API in `root`: opens it, submits workflows of
 * one workload at an offered load, waits for them (or a cap), closes it and reports
 * throughput, latency percentiles, per-step figures, failures and a time series.
 * Throws InvalidOptionsError for bad options, and the engine's InvalidInputError when the
 * workload does not validate against the root (nothing is submitted then).
 */
export async function runBenchmark(options: BenchmarkOptions): Promise<BenchmarkReport> {
  const parsed = BenchmarkOptionsSchema.safeParse(options);
  if (!parsed.success) throw new InvalidOptionsError(`runBenchmark: ${z.prettifyError(parsed.error)}`, { cause: parsed.error });
  const o = parsed.data;
  const workload = resolveWorkload(workloadOf(o));
  const mesh = await RelayMesh.open({
    root: o.root, concurrency: o.concurrency, work: o.mode === "concurrent",
    ...(o.store !== undefined ? { store: o.store } : {}),
    ...(o.durability ? { settings: { durability: o.durability } } : {}),
  });
  let run: Run | null = null;
  try {
    const runId = o.runId ?? newRunId();
    if (o.warmupTasks > 0) await warmUp(mesh, workload, o.warmupTasks, o.inFlight ?? o.concurrency, runId, o.taskName, o.stopSignal);
    run = new Run(mesh, o, workload, runId);
    return await run.execute();
  } finally {
    run?.dispose();
    await mesh.close(run?.abandoned ? { force: true, timeoutMs: 0 } : {});
  }
}

/** The bookkeeping of one run. */
class Run {
  readonly #mesh: RelayMesh;
  readonly #o: ResolvedBenchmarkOptions;
  readonly #w: Workload;
  readonly #runId: string;
  readonly #recorder: RunRecorder;
  readonly #tasks: number;
  readonly #errors = new Set<string>();
  #stopped = false;
  #stopReason: StopReason = "tasks";
  /** The drain was cut short (max-seconds or the abandon signal): close without waiting. */
  abandoned = false;
  #wake: (() => void) | null = null;
  #sleeping: { timer: NodeJS.Timeout; resolve: () => void } | null = null;
  readonly #timers: NodeJS.Timeout[] = [];
  readonly #cleanups: (() => void)[] = [];

  constructor(mesh: RelayMesh, o: ResolvedBenchmarkOptions, workload: Workload, runId: string) {
    this.#mesh = mesh;
    this.#o = o;
    this.#w = workload;
    this.#runId = runId;
    this.#tasks = o.tasks ?? (o.durationMs !== undefined ? Infinity : 1_000);
    this.#recorder = new RunRecorder(mesh, workload, {
      intervalMs: o.sampleIntervalMs, onSample: o.onSample,
      onFinished: () => {
        const r = this.#recorder;
        o.onProgress?.(r.completed, this.#tasks);
        if (this.#stopped || r.completed + r.submitFailed >= this.#tasks) this.#checkDrained();
      },
    });
  }

  async execute(): Promise<BenchmarkReport> {
    const o = this.#o;
    const startedAt = new Date();
    const memStart = process.memoryUsage();
    this.#recorder.start();
    const t0 = this.#recorder.startedAt;
    const maxSeconds = o.maxSeconds ?? (o.durationMs !== undefined ? o.durationMs / 1000 + 300 : 300);
    this.#timers.push(setTimeout(() => { this.abandoned = true; this.#stop("max-seconds"); this.#wake?.(); }, maxSeconds * 1000));
    if (o.durationMs !== undefined) this.#timers.push(setTimeout(() => this.#stop("duration"), o.durationMs));
    this.#onAbort(o.stopSignal, () => this.#stop("interrupt"));
    if (o.watchStore) this.#watchStore();
    this.#onAbort(o.abandonSignal, () => { this.abandoned = true; this.#stop("interrupt"); this.#wake?.(); });
    o.onMeasuring?.();

    if (o.rateLimitPerSec !== undefined) await this.#submitAtRate(o.rateLimitPerSec);
    else await this.#submitInFlight(o.mode === "concurrent" ? o.inFlight ?? o.concurrency : ENQUEUE_IN_FLIGHT);
    const enqueueEnd = performance.now();
    const drainStart = o.mode === "enqueue-then-drain" ? enqueueEnd : t0;
    if (o.mode === "enqueue-then-drain" && !this.abandoned) this.#mesh.start();
    await this.#drained();
    const end = performance.now();
    const rssMb = process.memoryUsage.rss() / 2 ** 20;
    this.#recorder.stop();
    return this.#report({ startedAt, memStart, t0, enqueueEnd, drainStart, end, rssMb });
  }

  dispose(): void {
    for (const t of this.#timers) clearTimeout(t);  // also clears intervals
    for (const c of this.#cleanups) c();
    this.#recorder.stop();
  }

  #report(t: { startedAt: Date; memStart: NodeJS.MemoryUsage; t0: number; enqueueEnd: number; drainStart: number; end: number; rssMb: number }): BenchmarkReport {
    const o = this.#o;
    const r = this.#recorder;
    const statuses = recordOf(r.statuses);
    const failures = r.failures();
    if (failures.tasks.UNFINISHED) statuses.UNFINISHED = failures.tasks.UNFINISHED;
    if (r.submitFailed > 0) statuses.SUBMIT_FAILED = r.submitFailed;
    const succeeded = r.statuses.get("SUCCESS") ?? 0;
    const attempted = r.submitted + r.submitFailed;
    const requested = Number.isFinite(this.#tasks) ? this.#tasks : null;
    // A capped run owes every requested task; one stopped on purpose owes what it submitted.
    const owed = this.#stopReason === "tasks" || this.#stopReason === "max-seconds" ? requested ?? attempted : attempted;
    const drainSeconds = Math.max(0, ((r.completed > 0 ? r.lastFinishAt : t.end) - t.drainStart) / 1000);
    const enqueueSeconds = (t.enqueueEnd - t.t0) / 1000;
    const latency: LatencySummary = r.latency.summary() ?? { count: 0, p50: NaN, p90: NaN, p95: NaN, p99: NaN, max: NaN, mean: NaN };
    const series = r.series;
    const peak = (f: (s: Sample) => number, start: number) => series.reduce((m, s) => Math.max(m, f(s)), start);
    const mb = (n: number) => n / 2 ** 20;
    const settings = this.#mesh.settings;
    return {
      reportVersion: 2, runId: this.#runId, relaymeshVersion: relaymeshVersion(),
      startedAt: t.startedAt.toISOString(), finishedAt: new Date().toISOString(),
      tasks: requested ?? attempted, tasksRequested: requested, durationSeconds: o.durationMs !== undefined ? o.durationMs / 1000 : null,
      submitted: r.submitted, finished: r.completed, stoppedBy: this.#stopReason,
      workload: this.#w.label, shape: o.workflow === undefined ? o.shape : null, agent: o.workflow === undefined ? o.agent : null,
      workflow: this.#w.spec, mode: o.mode,
      load: o.rateLimitPerSec !== undefined ? { model: "open", ratePerSec: o.rateLimitPerSec } : { model: "closed", inFlight: o.mode === "concurrent" ? o.inFlight ?? o.concurrency : ENQUEUE_IN_FLIGHT },
      stepsPerTask: this.#w.stepIds.length, concurrency: o.concurrency, inputSize: o.workflow === undefined ? o.inputSize : null,
      offeredPerSec: o.rateLimitPerSec ?? null, warmupTasks: o.warmupTasks,
      seconds: (t.end - t.t0) / 1000, enqueueSeconds, drainSeconds,
      throughputPerSec: perSec(r.completed, drainSeconds),
      stepsPerSec: perSec(succeeded * this.#w.stepIds.length, drainSeconds),
      enqueuePerSec: perSec(r.submitted, enqueueSeconds),
      latencyMs: { p50: latency.p50, p90: latency.p90, p95: latency.p95, p99: latency.p99, max: latency.max, mean: latency.mean },
      steps: r.steps(), failures, statuses, notSucceeded: Math.max(0, owed - succeeded),
      capped: this.#stopReason === "max-seconds", errors: [...this.#errors],
      series, sampleIntervalMs: o.sampleIntervalMs,
      resources: {
        rssMb: { start: mb(t.memStart.rss), peak: peak((s) => s.rssMb, mb(t.memStart.rss)), end: t.rssMb },
        heapUsedMb: { start: mb(t.memStart.heapUsed), peak: peak((s) => s.heapUsedMb, mb(t.memStart.heapUsed)), end: series.at(-1)?.heapUsedMb ?? mb(t.memStart.heapUsed) },
        cpuPctMean: weightedMean(series, (s) => s.cpuPct),
      },
      stability: stabilityOf(series),
      settings, durability: settings.durability, store: redact(this.#mesh.store.location), machine: machineFacts(),
      rssMb: t.rssMb, node: process.version, cpus: availableParallelism(),
    };
  }

  /** Polls the store for open tasks due over a second ago that finished elsewhere. */
  #watchStore(): void {
    let busy = false;
    const timer = setInterval(() => {
      if (busy) return;
      const ids = this.#recorder.openTasksDueBefore(performance.now() - 1_000, 1_000);
      if (ids.length === 0) return;
      busy = true;
      this.#mesh.store.taskStatuses(ids).then((statuses) => {
        const at = performance.now();
        for (const [id, status] of statuses) if (TERMINAL_TASK_STATUSES.has(status)) this.#recorder.finishedElsewhere(id, status, at);
      }, () => { /* a busy store: the next poll tries again */ }).finally(() => { busy = false; });
    }, STORE_POLL_MS);
    this.#timers.push(timer);
  }

  #onAbort(signal: AbortSignal | undefined, fn: () => void): void {
    if (!signal) return;
    if (signal.aborted) return fn();
    signal.addEventListener("abort", fn, { once: true });
    this.#cleanups.push(() => signal.removeEventListener("abort", fn));
  }

  #stop(reason: StopReason): void {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#stopReason = reason;
    if (this.#sleeping) { clearTimeout(this.#sleeping.timer); this.#sleeping.resolve(); }
    this.#checkDrained();
  }

  #checkDrained(): void {
    const r = this.#recorder;
    if (r.inFlight === 0 && this.#submitting === 0 && (this.#stopped || r.completed + r.submitFailed >= this.#tasks)) this.#wake?.();
  }

  /** Submit calls not yet returned. */
  #submitting = 0;

  /** Closed loop: `inFlight` submitters, each submitting its next task once the last one committed. */
  async #submitInFlight(inFlight: number): Promise<void> {
    let next = 0;
    const submitter = async () => {
      while (!this.#stopped && next < this.#tasks) {
        const i = next++;
        await this.#submit(i, performance.now());
      }
    };
    await Promise.all(Array.from({ length: Math.min(inFlight, this.#tasks) }, submitter));
  }

  /** Open loop: task i is due at i / rate seconds, whether or not earlier ones committed. */
  async #submitAtRate(rate: number): Promise<void> {
    const pending = new Set<Promise<void>>();
    const t0 = performance.now();
    for (let i = 0; i < this.#tasks && !this.#stopped; i++) {
      const due = t0 + (i * 1000) / rate;
      const wait = due - performance.now();
      if (wait >= 1) await this.#sleep(wait);
      if (this.#stopped) break;
      const p = this.#submit(i, due).finally(() => pending.delete(p));
      pending.add(p);
    }
    await Promise.all(pending);
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.#sleeping = { timer: setTimeout(() => { this.#sleeping = null; resolve(); }, ms), resolve };
    });
  }

  async #submit(i: number, dueAt: number): Promise<void> {
    this.#submitting++;
    try {
      const taskId = await this.#w.submit(this.#mesh, i, this.#runId, this.#o.taskName);
      this.#recorder.submittedTask(taskId, dueAt, performance.now());
    } catch (error) {
      this.#recorder.submitFailedTask(error);
      if (this.#errors.size < 5) this.#errors.add((error as Error)?.message ?? String(error));
    } finally {
      this.#submitting--;
    }
    this.#checkDrained();
  }

  #drained(): Promise<void> {
    return new Promise((resolve) => {
      this.#wake = resolve;
      if (this.abandoned) resolve();
      else this.#checkDrained();
    });
  }
}

/** Runs `count` tasks of the workload to completion, `inFlight` submissions at a time; `stop` ends submitting early. */
async function warmUp(mesh: RelayMesh, w: Workload, count: number, inFlight: number, runId: string, name: string | undefined, stop: AbortSignal | undefined): Promise<void> {
  const finished = new Set<string>();
  const onFinished = (e: { taskId: string }) => { finished.add(e.taskId); };
  mesh.on("task:finished", onFinished);
  try {
    const ids: string[] = [];
    let next = 0;
    const submitter = async () => {
      while (next < count && !stop?.aborted) { const i = next++; ids.push(await w.submit(mesh, i, `${runId}-warmup`, name)); }
    };
    await Promise.all(Array.from({ length: Math.min(inFlight, count) }, submitter));
    // waitFor covers any whose event came before we listened; bounded so a stuck agent cannot hang the run.
    for (const id of ids) if (!finished.has(id)) await mesh.waitFor(id, { timeoutMs: 120_000 });
  } finally {
    mesh.off("task:finished", onFinished);
  }
}

/** A fresh run id: 12 random hex digits. */
export function newRunId(): string {
  return randomBytes(6).toString("hex");
}

function perSec(count: number, seconds: number): number {
  return seconds > 0 ? count / seconds : 0;
}

/** Mean of a per-interval figure, weighted by interval length. */
function weightedMean(series: Sample[], f: (s: Sample) => number): number {
  let sum = 0;
  let ms = 0;
  for (const s of series) { sum += f(s) * s.intervalMs; ms += s.intervalMs; }
  return ms > 0 ? sum / ms : 0;
}
