import { availableParallelism } from "node:os";
import { performance } from "node:perf_hooks";
import { join } from "node:path";
import { z } from "zod";
import { InvalidOptionsError, RelayMesh, type WorkflowSpec } from "../index.js";
import { percentile, sortedAscending } from "./stats.js";

export const BENCHMARK_SHAPES = ["single", "chain", "diamond", "fanout"] as const;
export type BenchmarkShape = (typeof BENCHMARK_SHAPES)[number];
export const BENCHMARK_MODES = ["enqueue-then-drain", "concurrent"] as const;
export type BenchmarkMode = (typeof BENCHMARK_MODES)[number];

/** Width of the middle layer of the `fanout` shape. */
export const FANOUT_WIDTH = 20;

/** Options of `runBenchmark()`. */
export const BenchmarkOptionsSchema = z.strictObject({
  /** Folder of the root to run in (created when missing). Use a fresh one: its store keeps every task. */
  root: z.string().min(1),
  /**
   * Store URL (see RelayMesh.open); use an empty one, it keeps every task.
   * @default the root's SQLite file
   */
  store: z.string().min(1).optional(),
  /**
   * Tasks (workflows) to submit.
   * @default 1000
   */
  tasks: z.number().int().min(1).max(10_000_000).default(1_000),
  /**
   * Workflow shape, every step the `echo` agent: `single` (one step), `chain` (A→B→C),
   * `diamond` (A→(B,C)→D), `fanout` (A→20 parallel steps→Z).
   * @default "single"
   */
  shape: z.enum(BENCHMARK_SHAPES).default("single"),
  /**
   * Size of each step's input: a string of this many ASCII characters.
   * @default 64
   */
  inputSize: z.number().int().min(0).max(10 * 1024 * 1024).default(64),
  /**
   * Step attempts running at once (the engine's `concurrency`); in `concurrent` mode also the
   * number of submissions in flight.
   * @default 8
   */
  concurrency: z.number().int().min(1).max(10_000).default(8),
  /**
   * Cap on the run, in seconds from the first submission: past it, submitting stops, the engine
   * is closed and the report counts what had finished (the rest as `UNFINISHED`).
   * @default 300
   */
  maxSeconds: z.number().positive().max(7 * 24 * 3600).default(300),
  /**
   * `enqueue-then-drain`: open with `work: false`, submit everything (8 submissions in flight),
   * then `start()` and drain; throughput is measured over the drain alone.
   * `concurrent`: work while submitting, `concurrency` submissions in flight (or at
   * `rateLimitPerSec`); throughput is measured from the first submission to the last finish.
   * @default "concurrent"
   */
  mode: z.enum(BENCHMARK_MODES).default("concurrent"),
  /**
   * Offered load: submit at this fixed rate (tasks per second) whatever the engine's pace,
   * instead of a fixed number in flight. `concurrent` mode only.
   * @default undefined (as fast as the in-flight limit allows)
   */
  rateLimitPerSec: z.number().positive().max(1_000_000).optional(),
  /**
   * Single echo tasks run to completion before measuring starts (they start the worker threads
   * and warm the caches); not counted in the report. `concurrent` mode only: in
   * `enqueue-then-drain` the pool starts with the drain, and its start-up is part of the drain.
   * @default 0
   */
  warmupTasks: z.number().int().min(0).max(1_000_000).default(0),
  /**
   * SQLite durability for this run; overrides the root's settings file.
   * @default undefined (the root's setting, itself "full" by default)
   */
  durability: z.enum(["full", "normal"]).optional(),
  /**
   * Called after every finished task with the number finished so far and the number requested.
   * Runs inside the engine's event dispatch: keep it cheap (throttle redraws yourself).
   * @default undefined
   */
  onProgress: z.custom<(done: number, total: number) => void>((v) => typeof v === "function", "must be a function").optional(),
}).superRefine((o, ctx) => {
  if (o.rateLimitPerSec !== undefined && o.mode !== "concurrent") {
    ctx.addIssue({ code: "custom", path: ["rateLimitPerSec"], message: `rateLimitPerSec needs mode "concurrent" (mode is "${o.mode}")` });
  }
  if (o.warmupTasks > 0 && o.mode !== "concurrent") {
    ctx.addIssue({ code: "custom", path: ["warmupTasks"], message: `warmupTasks needs mode "concurrent" (mode is "${o.mode}")` });
  }
});
export type BenchmarkOptions = z.input<typeof BenchmarkOptionsSchema>;
type ResolvedBenchmarkOptions = z.output<typeof BenchmarkOptionsSchema>;

/** What `runBenchmark()` measured. Durations in seconds, latencies in milliseconds. */
export interface BenchmarkReport {
  /** Tasks requested. */
  tasks: number;
  /** Tasks whose submission was committed. */
  submitted: number;
  /** Tasks that reached a terminal status within the run. */
  finished: number;
  shape: BenchmarkShape;
  mode: BenchmarkMode;
  stepsPerTask: number;
  concurrency: number;
  inputSize: number;
  /** Offered rate, when `rateLimitPerSec` was given. */
  offeredPerSec: number | null;
  /** First submission to the end of the run. */
  seconds: number;
  /** The submission phase (all of it, also in `concurrent` mode). */
  enqueueSeconds: number;
  /** The window throughput is measured over: the drain (enqueue-then-drain) or the whole run (concurrent). */
  drainSeconds: number;
  /** Finished tasks (workflows) per second over `drainSeconds`. */
  throughputPerSec: number;
  /** Succeeded steps per second over `drainSeconds` (SUCCESS tasks × steps per task). */
  stepsPerSec: number;
  /** Committed submissions per second over `enqueueSeconds`. */
  enqueuePerSec: number;
  /** Start of the `submit` call to the `task:finished` event, over finished tasks (nearest rank). */
  latencyMs: { p50: number; p95: number; p99: number; max: number };
  /** Terminal statuses, plus `UNFINISHED` (submitted, not finished in time) and `SUBMIT_FAILED`. */
  statuses: Record<string, number>;
  /** Tasks requested that did not end SUCCESS (0 for a clean run). */
  notSucceeded: number;
  /** The run hit `maxSeconds`. */
  capped: boolean;
  /** Up to 5 distinct submission errors. */
  errors: string[];
  /** Resident set size after the run, before the engine closed. */
  rssMb: number;
  node: string;
  cpus: number;
}

/** Submissions in flight during the enqueue phase of `enqueue-then-drain`. */
const ENQUEUE_IN_FLIGHT = 8;

/**
 * Runs a benchmark against the engine's public API in `root`: opens it, submits `tasks`
 * workflows of one shape, waits for them (or `maxSeconds`), closes it and reports throughput,
 * latency percentiles and final statuses. Throws InvalidOptionsError for bad options.
 */
export async function runBenchmark(options: BenchmarkOptions): Promise<BenchmarkReport> {
  const parsed = BenchmarkOptionsSchema.safeParse(options);
  if (!parsed.success) throw new InvalidOptionsError(`runBenchmark: ${z.prettifyError(parsed.error)}`, { cause: parsed.error });
  const o = parsed.data;
  const mesh = await RelayMesh.open({
    root: o.root, store: o.store ?? `sqlite:${join(o.root, "relaymesh.db")}`, concurrency: o.concurrency, work: o.mode === "concurrent",
    ...(o.durability ? { settings: { durability: o.durability } } : {}),
  });
  let run: Run | null = null;
  try {
    if (o.warmupTasks > 0) await warmUp(mesh, o.warmupTasks, o.concurrency);
    run = new Run(mesh, o);
    return await run.execute();
  } finally {
    run?.dispose();
    await mesh.close(run?.capped ? { force: true, timeoutMs: 0 } : {});
  }
}

/** The bookkeeping of one run. Per-task state is kept in typed arrays so it does not grow the heap per task. */
class Run {
  readonly #mesh: RelayMesh;
  readonly #o: ResolvedBenchmarkOptions;
  readonly #spec: WorkflowSpec;
  readonly #startedAt: Float64Array;
  readonly #latency: Float64Array;
  /** Our tasks submitted and not yet finished, by id. */
  readonly #open = new Map<string, number>();
  /** Finishes seen before their submit call returned (possible only in principle; kept for correctness). */
  readonly #early = new Map<string, { at: number; status: string }>();
  readonly statuses: Record<string, number> = {};
  readonly #errors = new Set<string>();
  #submitted = 0;
  #submitFailed = 0;
  #finished = 0;
  #lastFinishAt = 0;
  #stopped = false;
  capped = false;
  #wake: (() => void) | null = null;
  #deadline: NodeJS.Timeout | null = null;
  readonly #onFinished = (e: { taskId: string; status: string }) => this.#finish(e.taskId, e.status, performance.now());

  constructor(mesh: RelayMesh, o: ResolvedBenchmarkOptions) {
    this.#mesh = mesh;
    this.#o = o;
    this.#spec = workflowOf(o.shape, "x".repeat(o.inputSize));
    this.#startedAt = new Float64Array(o.tasks);
    this.#latency = new Float64Array(o.tasks);
    mesh.on("task:finished", this.#onFinished);
  }

  async execute(): Promise<BenchmarkReport> {
    const o = this.#o;
    const t0 = performance.now();
    this.#deadline = setTimeout(() => { this.capped = true; this.#stopped = true; this.#wake?.(); }, o.maxSeconds * 1000);
    if (o.rateLimitPerSec !== undefined) await this.#submitAtRate(o.rateLimitPerSec);
    else await this.#submitInFlight(o.mode === "concurrent" ? o.concurrency : ENQUEUE_IN_FLIGHT);
    const enqueueEnd = performance.now();
    const drainStart = o.mode === "enqueue-then-drain" ? enqueueEnd : t0;
    if (o.mode === "enqueue-then-drain" && !this.#stopped) this.#mesh.start();
    await this.#allFinished();
    const end = performance.now();
    const rssMb = process.memoryUsage.rss() / 2 ** 20;

    const unfinished = this.#submitted - this.#finished;
    if (unfinished > 0) this.statuses.UNFINISHED = unfinished;
    if (this.#submitFailed > 0) this.statuses.SUBMIT_FAILED = this.#submitFailed;
    const succeeded = this.statuses.SUCCESS ?? 0;
    const drainSeconds = Math.max(0, ((this.#finished > 0 ? this.#lastFinishAt : end) - drainStart) / 1000);
    const enqueueSeconds = (enqueueEnd - t0) / 1000;
    const stepsPerTask = this.#spec.steps.length;
    const sorted = sortedAscending(this.#latency.subarray(0, this.#finished));
    return {
      tasks: o.tasks, submitted: this.#submitted, finished: this.#finished, shape: o.shape, mode: o.mode, stepsPerTask,
      concurrency: o.concurrency, inputSize: o.inputSize, offeredPerSec: o.rateLimitPerSec ?? null,
      seconds: (end - t0) / 1000, enqueueSeconds, drainSeconds,
      throughputPerSec: perSec(this.#finished, drainSeconds),
      stepsPerSec: perSec(succeeded * stepsPerTask, drainSeconds),
      enqueuePerSec: perSec(this.#submitted, enqueueSeconds),
      latencyMs: { p50: percentile(sorted, 50), p95: percentile(sorted, 95), p99: percentile(sorted, 99), max: percentile(sorted, 100) },
      statuses: this.statuses, notSucceeded: o.tasks - succeeded, capped: this.capped, errors: [...this.#errors],
      rssMb, node: process.version, cpus: availableParallelism(),
    };
  }

  dispose(): void {
    if (this.#deadline) clearTimeout(this.#deadline);
    this.#mesh.off("task:finished", this.#onFinished);
  }

  /** Closed loop: `inFlight` submitters, each submitting its next task once the last one committed. */
  async #submitInFlight(inFlight: number): Promise<void> {
    let next = 0;
    const submitter = async () => {
      while (!this.#stopped && next < this.#o.tasks) await this.#submit(next++);
    };
    await Promise.all(Array.from({ length: Math.min(inFlight, this.#o.tasks) }, submitter));
  }

  /** Open loop: task i is submitted at i / rate seconds, whether or not earlier ones committed. */
  async #submitAtRate(rate: number): Promise<void> {
    const pending = new Set<Promise<void>>();
    const t0 = performance.now();
    for (let i = 0; i < this.#o.tasks && !this.#stopped; i++) {
      const wait = t0 + (i * 1000) / rate - performance.now();
      if (wait >= 1) await new Promise((r) => setTimeout(r, wait));
      if (this.#stopped) break;
      const p = this.#submit(i).finally(() => pending.delete(p));
      pending.add(p);
    }
    await Promise.all(pending);
  }

  async #submit(i: number): Promise<void> {
    this.#startedAt[i] = performance.now();
    let taskId: string;
    try {
      taskId = this.#o.shape === "single"
        ? (await this.#mesh.submit({ agent: "echo", input: this.#spec.steps[0]!.input })).taskId
        : (await this.#mesh.submitWorkflow(this.#spec, { source: "bench" })).taskId;
    } catch (error) {
      this.#submitFailed++;
      if (this.#errors.size < 5) this.#errors.add((error as Error)?.message ?? String(error));
      return;
    }
    this.#submitted++;
    this.#open.set(taskId, i);
    const early = this.#early.get(taskId);
    if (early) { this.#early.delete(taskId); this.#finish(taskId, early.status, early.at); }
  }

  #finish(taskId: string, status: string, at: number): void {
    const i = this.#open.get(taskId);
    if (i === undefined) {
      // Either a task of another process in this root, or ours before its submit call returned.
      if (!this.#stopped) this.#early.set(taskId, { at, status });
      return;
    }
    this.#open.delete(taskId);
    this.#latency[this.#finished++] = at - this.#startedAt[i]!;
    this.#lastFinishAt = at;
    this.statuses[status] = (this.statuses[status] ?? 0) + 1;
    this.#o.onProgress?.(this.#finished, this.#o.tasks);
    if (this.#finished === this.#submitted && this.#finished + this.#submitFailed === this.#o.tasks) this.#wake?.();
  }

  #allFinished(): Promise<void> {
    if (this.#stopped || this.#finished + this.#submitFailed === this.#o.tasks) return Promise.resolve();
    return new Promise((resolve) => { this.#wake = resolve; });
  }
}

/** Runs `count` single echo tasks to completion, `inFlight` submissions at a time. */
async function warmUp(mesh: RelayMesh, count: number, inFlight: number): Promise<void> {
  const finished = new Set<string>();
  const onFinished = (e: { taskId: string }) => { finished.add(e.taskId); };
  mesh.on("task:finished", onFinished);
  try {
    const ids: string[] = [];
    let next = 0;
    const submitter = async () => {
      while (next < count) { next++; ids.push((await mesh.submit({ agent: "echo", input: null })).taskId); }
    };
    await Promise.all(Array.from({ length: Math.min(inFlight, count) }, submitter));
    // Bounded: a warm-up task is an echo; waitFor covers any whose event came before we listened.
    for (const id of ids) if (!finished.has(id)) await mesh.waitFor(id, { timeoutMs: 60_000 });
  } finally {
    mesh.off("task:finished", onFinished);
  }
}

/** The workflow every task of a run submits; `single` is sent through `submit()` with its one step's input. */
function workflowOf(shape: BenchmarkShape, input: string): WorkflowSpec {
  const step = (id: string, dependsOn: string[] = []) => ({ id, agent: "echo", input, ...(dependsOn.length > 0 ? { dependsOn } : {}) });
  switch (shape) {
    case "single":
      return { steps: [step("main")] };
    case "chain":
      return { name: "bench-chain", steps: [step("a"), step("b", ["a"]), step("c", ["b"])] };
    case "diamond":
      return { name: "bench-diamond", steps: [step("a"), step("b", ["a"]), step("c", ["a"]), step("d", ["b", "c"])] };
    case "fanout": {
      const middle = Array.from({ length: FANOUT_WIDTH }, (_, k) => step(`m${String(k + 1).padStart(2, "0")}`, ["a"]));
      return { name: "bench-fanout", steps: [step("a"), ...middle, step("z", middle.map((m) => m.id))] };
    }
  }
}

function perSec(count: number, seconds: number): number {
  return seconds > 0 ? count / seconds : 0;
}
