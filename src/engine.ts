import { hostname } from "node:os";
import { z } from "zod";
import { AgentRegistry } from "./agents/registry.js";
import {
  InvalidOptionsError, InvalidStateError, NotFoundError, RelayMeshError, ErrorCode, ShutdownTimeoutError,
} from "./errors.js";
import { TypedEmitter, type EngineEventMap } from "./events.js";
import { buildSingleTask, buildWorkflowTask, type SubmitOptions } from "./model/build-task.js";
import type { Settings } from "./model/settings.js";
import { CloseOptionsSchema, EngineOptionsSchema, type CloseOptions, type EngineOptions, type ResolvedEngineOptions } from "./options.js";
import { AgentPool } from "./pool/pool.js";
import { defaultRoot, ensureRoot, readRootConfig, rootPaths, type RootPaths } from "./root.js";
import { openStore } from "./store/open.js";
import type { Store } from "./store/store.js";
import { TERMINAL_TASK_STATUSES, type LeaseConflict, type TaskRecord, type TaskStatus, type TaskWithSteps } from "./store/types.js";
import { Supervisor } from "./supervisor/supervisor.js";

/**
 * Lifecycle: `open` → `running` (claiming and running steps) or `idle` (opened with
 * `work: false`: submits and reads only) → `closing` → `closed`.
 */
export type EngineState = "idle" | "running" | "closing" | "closed";

/** A RelayMesh engine bound to one root (and store). Create with `RelayMesh.open()`. */
export class RelayMesh extends TypedEmitter<EngineEventMap> {
  readonly nodeId: string;
  readonly root: string;
  readonly paths: RootPaths;
  readonly store: Store;
  readonly agents: AgentRegistry;
  #settings: Settings;
  readonly #options: ResolvedEngineOptions;
  readonly #supervisor: Supervisor;
  #pool: AgentPool | null = null;
  #state: EngineState = "idle";
  #closing: Promise<void> | null = null;

  private constructor(o: ResolvedEngineOptions, paths: RootPaths, store: Store, settings: Settings, agents: AgentRegistry) {
    super();
    this.#options = o;
    this.paths = paths;
    this.root = paths.dir;
    this.store = store;
    this.#settings = settings;
    this.agents = agents;
    this.nodeId = o.nodeId ?? `${hostname()}-${process.pid}`;
    this.#supervisor = new Supervisor({
      store, pool: null, agents, nodeId: this.nodeId, concurrency: o.concurrency, prefetch: o.prefetch ?? o.concurrency, settings,
      pollIntervalMs: o.pollIntervalMs, emit: (event, payload) => this.safeEmit(event, payload),
    });
  }

  /** Opens (creating when missing) a root and its store; starts working unless `work: false`. */
  static async open(options: EngineOptions = {}): Promise<RelayMesh> {
    const parsed = EngineOptionsSchema.safeParse(options);
    if (!parsed.success) throw new InvalidOptionsError(`RelayMesh.open: ${z.prettifyError(parsed.error)}`, { cause: parsed.error });
    const o = parsed.data;
    const paths = rootPaths(o.root ?? defaultRoot());
    const config = readRootConfig(paths, o.settings);
    const agents = new AgentRegistry([...config.modules, ...o.agents], paths.dir);
    ensureRoot(paths);
    const store = await openStore(o.store ?? (process.env.RELAYMESH_STORE || undefined), paths.db, config.settings);
    const mesh = new RelayMesh(o, paths, store, config.settings, agents);
    if (o.work) mesh.start();
    return mesh;
  }

  get state(): EngineState {
    return this.#state;
  }

  get settings(): Settings {
    return this.#settings;
  }

  /** Step attempts this engine ran to an outcome. */
  get stats(): { executed: number; succeeded: number; failed: number } {
    return { ...this.#supervisor.stats };
  }

  /** Begins claiming and running steps (after `open({ work: false })`). */
  start(): void {
    this.#assertOpen("start");
    if (this.#state === "running") return;
    if (!this.#pool) {
      this.#pool = new AgentPool({
        concurrency: this.#options.concurrency,
        ...(this.#options.threads !== undefined ? { threads: this.#options.threads } : {}),
        ...(this.#options.piscina ? { piscina: this.#options.piscina } : {}),
      });
      this.#supervisor.attachPool(this.#pool);
    }
    this.#supervisor.startWorking();
    this.#state = "running";
  }

  /** Submits a one-step task. Resolves once committed. */
  async submit(spec: { agent: string; input?: unknown; priority?: "high" | "normal" | "low"; idempotencyKey?: string; retry?: { maxAttempts?: number; baseBackoffMs?: number; maxBackoffMs?: number }; timeoutMs?: number; name?: string }, options: SubmitOptions = {}): Promise<{ taskId: string; created: boolean }> {
    this.#assertOpen("submit");
    const task = buildSingleTask(spec, this.#buildContext("submit"), options);
    const { taskId, created } = await this.#supervisor.submit(task);
    return { taskId, created };
  }

  /** Validates and submits a workflow (the JSON of CONTRACT.md). Resolves once committed. */
  async submitWorkflow(spec: unknown, options: SubmitOptions & { source?: string } = {}): Promise<{ taskId: string; created: boolean; steps: number }> {
    this.#assertOpen("submitWorkflow");
    const task = buildWorkflowTask(spec, this.#buildContext(options.source ?? "workflow"), options);
    return this.#supervisor.submit(task);
  }

  /** One task with its steps and edges; throws NotFoundError. */
  async getTask(taskId: string): Promise<TaskWithSteps> {
    const task = await this.store.getTask(taskId);
    if (!task) throw new NotFoundError(`task ${taskId} not found in ${this.store.location}`);
    return task;
  }

  async listTasks(query: { status?: TaskStatus; limit?: number; offset?: number } = {}): Promise<{ tasks: TaskRecord[]; total: number }> {
    return this.store.listTasks({ limit: 50, offset: 0, ...query });
  }

  async leaseConflicts(query: { sinceMs?: number; limit?: number } = {}): Promise<LeaseConflict[]> {
    return this.store.listLeaseConflicts({ sinceMs: 0, limit: 100, ...query });
  }

  /**
   * Resolves with the task once it is SUCCESS, DEAD_LETTER or CANCELLED — whichever process ran
   * it. Throws NotFoundError for an unknown id, and a RELAYMESH_ERR_WAIT_TIMEOUT error past `timeoutMs`.
   */
  async waitFor(taskId: string, options: { timeoutMs?: number; pollIntervalMs?: number } = {}): Promise<TaskWithSteps> {
    const first = await this.getTask(taskId);
    if (TERMINAL_TASK_STATUSES.has(first.status)) return first;
    const timeoutMs = options.timeoutMs ?? Infinity;
    const poll = options.pollIntervalMs ?? 250;
    await new Promise<void>((resolve, reject) => {
      const done = (error?: Error) => {
        this.off("task:finished", onFinished);
        clearInterval(poller);
        if (deadline) clearTimeout(deadline);
        if (error) reject(error); else resolve();
      };
      const onFinished = (e: { taskId: string }) => { if (e.taskId === taskId) done(); };
      this.on("task:finished", onFinished);
      const poller = setInterval(() => {
        this.store.taskStatuses([taskId]).then((m) => { if (TERMINAL_TASK_STATUSES.has(m.get(taskId)!)) done(); }, (e: Error) => done(e));
      }, poll);
      const deadline = Number.isFinite(timeoutMs)
        ? setTimeout(() => done(new RelayMeshError(ErrorCode.WAIT_TIMEOUT, `task ${taskId} did not finish within ${timeoutMs} ms`)), timeoutMs)
        : null;
    });
    return this.getTask(taskId);
  }

  /** Runs everything runnable now (after one maintenance pass), then stops working. For `worker --once`. */
  async runUntilIdle(): Promise<void> {
    this.start();
    await this.#supervisor.idle();
    this.#supervisor.stopClaiming();
    this.#state = "idle";
  }

  /**
   * Graceful shutdown, idempotent (later calls return the first call's promise):
   * 1. stop claiming; 2. let in-flight steps finish for up to `timeoutMs` (at once with `force`);
   * 3. abort what still runs and release its leases; 4. commit what is owed; 5. close the pool;
   * 6. close the store. Every step runs even if one fails; failures are thrown together.
   * A call with `force` while a graceful close is under way skips the rest of its wait.
   */
  close(options?: CloseOptions): Promise<void> {
    const parsed = CloseOptionsSchema.safeParse(options);
    if (!parsed.success) return Promise.reject(new InvalidOptionsError(`close: ${z.prettifyError(parsed.error)}`));
    const { timeoutMs, force } = parsed.data;
    if (this.#closing) {
      // A forced close during a graceful one stops waiting for in-flight steps.
      if (force) this.#supervisor.abortAll("release", new RelayMeshError(ErrorCode.ABORTED, "engine is closing (forced)"));
      return this.#closing;
    }
    this.#state = "closing";
    this.safeEmit("engine:closing", {});
    this.#closing = (async () => {
      const errors: unknown[] = [];
      const attempt = async (fn: () => unknown) => { try { await fn(); } catch (e) { errors.push(e); } };
      await attempt(() => this.#supervisor.stopClaiming());
      if (!force) await attempt(() => withTimeout(this.#supervisor.idle(), timeoutMs));
      await attempt(() => this.#supervisor.abortAll("release", new RelayMeshError(ErrorCode.ABORTED, "engine is closing")));
      await attempt(async () => {
        await withTimeout(this.#supervisor.idle(), 5_000);
        const left = this.#supervisor.inFlight;
        if (left > 0) throw new ShutdownTimeoutError(`${left} step(s) did not stop within 5000 ms of being aborted; their leases will expire and be reclaimed`);
      });
      await attempt(() => this.#supervisor.flushNow());
      if (this.#pool) await attempt(() => this.#pool!.close());
      await attempt(() => this.store.close());
      this.#state = "closed";
      if (errors.length === 1) throw errors[0];
      if (errors.length > 1) throw new AggregateError(errors, "RelayMesh.close: several shutdown steps failed");
    })();
    return this.#closing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  #buildContext(source: string) {
    return { agents: this.agents, settings: this.#settings, source };
  }

  #assertOpen(method: string): void {
    if (this.#state === "closing" || this.#state === "closed") {
      throw new InvalidStateError(`RelayMesh.${method}: the engine is ${this.#state}`);
    }
  }
}

/** Resolves with `promise`, or quietly after `ms` (the caller moves on to harder measures). */
function withTimeout(promise: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([promise, new Promise<void>((resolve) => { timer = setTimeout(resolve, ms); })]).finally(() => clearTimeout(timer));
}
