import { hostname } from "node:os";
import { join } from "node:path";
import { z } from "zod";
import { AgentRegistry } from "./agents/registry.js";
import {
  InvalidOptionsError, InvalidStateError, LeaseLostError, NotFoundError, RelayMeshError, ErrorCode, ShutdownTimeoutError,
} from "./errors.js";
import { TypedEmitter, type EngineEventMap } from "./events.js";
import { buildSingleTask, buildWorkflowTask, namedAgents, type BuildContext, type SubmitOptions } from "./model/build-task.js";
import type { Settings } from "./model/settings.js";
import { CloseOptionsSchema, EngineOptionsSchema, IntervalMsSchema, WaitOptionsSchema, parseArgument, type CloseOptions, type EngineOptions, type ResolvedEngineOptions } from "./options.js";
import type { AgentPool } from "./pool/pool.js";
import { defaultRoot, ensureRoot, loadAgents, readRootConfig, rootPaths, type RootPaths } from "./root.js";
import type { RetryOverride, SingleTaskSpec } from "./model/workflow.js";
import { openStore } from "./store/open.js";
import type { Store } from "./store/store.js";
import { TERMINAL_TASK_STATUSES, type LeaseConflict, type TaskRecord, type TaskStatus, type TaskWithSteps } from "./store/types.js";
import { Supervisor } from "./supervisor/supervisor.js";
import { AuditLog } from "./observe/audit.js";
import { AuditTrail, FILE_BATCHING, STORE_BATCH_MS, STORE_BATCH_RECORDS } from "./observe/audit-trail.js";
import { StoreAuditLog } from "./observe/store-audit.js";
import { changedFields, fingerprint, type SettingsFingerprint } from "./model/settings-diff.js";
import { existsSync, readFileSync } from "node:fs";
import { writeJsonFile } from "./ops/exports.js";
import { exportDeadLetters, exportTask } from "./ops/exports.js";
import type { MaintenanceResult } from "./mesh/maintenance.js";
import { machineUsage, relativeLoad } from "./mesh/claim-policy.js";
import { CLUSTER_FIELDS, disagreements, publishClusterSettings, readClusterSettings, underCluster } from "./mesh/cluster-settings.js";
import { agentDirectory, unservableAgents, type UnservableAgent } from "./mesh/agents.js";
import { renderMetrics, slaFigures } from "./observe/metrics.js";
import type { InboxPassResult } from "./inbox/inbox.js";
import type { HealthCheck, KvChange, NewTask, NodeRecord, SettingsChange } from "./store/types.js";
import type { MigrateResult } from "./ops/migrate.js";
import { legacySettingsHistory, mergeSettingsHistory } from "./observe/settings-history.js";
import { randomUUID } from "node:crypto";
import { KvNamespace, type KvTransport } from "./agents/kv.js";
import { parseSchedule, scheduleView, type ScheduleInput } from "./schedule/definition.js";
import { nextFrom, slotKey } from "./schedule/plan.js";
import { scheduleTick } from "./schedule/scheduler.js";
import type { ScheduleFire, ScheduleFireResult, ScheduleRecord } from "./store/types.js";

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
  readonly #trail: AuditTrail;
  /** The root's JSONL audit file (read for the settings changes older roots recorded only there). */
  readonly #auditFile: AuditLog;
  /** Who this engine's actions are attributed to in the audit log. */
  readonly actor: string;
  #settings: Settings;
  /** This root's own settings (file and options), before the cluster's are laid over them. */
  #fileSettings: Settings;
  /** The version of the cluster settings applied here (0: none yet). */
  #clusterVersion = 0;
  #nodeTimer: NodeJS.Timeout | null = null;
  #beating = false;
  /** Monotonic time the last heartbeat the store took was sent (the others' DEAD verdict counts from about then). */
  #beatTakenAt = performance.now();
  /** Monotonic time of the last beat of the node timer (a long gap: this process was paused). */
  #lastBeatAt = performance.now();
  /** The node timer's period. */
  #beatIntervalMs = 0;
  #lastPruneMs = 0;
  #reloadTimer: NodeJS.Timeout | null = null;
  readonly #pendingSettings = new Set<Promise<void>>();
  #flowTimer: NodeJS.Timeout | null = null;
  #flowTicking: Promise<void> | null = null;
  readonly #options: ResolvedEngineOptions;
  readonly #supervisor: Supervisor;
  #pool: AgentPool | null = null;
  /** Settles once the pool's threads answered (rejects when they cannot start); null before the first start. */
  #poolReady: Promise<void> | null = null;
  #state: EngineState = "idle";
  #closing: Promise<void> | null = null;

  readonly #retryPolicies: Map<string, RetryOverride>;

  private constructor(o: ResolvedEngineOptions, paths: RootPaths, store: Store, settings: Settings, agents: AgentRegistry, retryPolicies: Map<string, RetryOverride>) {
    super();
    this.#options = o;
    this.paths = paths;
    this.root = paths.dir;
    this.store = store;
    this.#settings = settings;
    this.#fileSettings = settings;
    this.agents = agents;
    this.#retryPolicies = retryPolicies;
    this.nodeId = o.nodeId ?? `${hostname()}-${process.pid}`;
    this.actor = o.actor ?? "api";
    this.#auditFile = new AuditLog(join(paths.auditDir, "audit.log"));
    this.#trail = new AuditTrail(
      store.shared ? new StoreAuditLog(store, this.nodeId) : this.#auditFile, (error) => this.safeEmit("engine:error", { error }),
      store.shared ? { delayMs: STORE_BATCH_MS, maxRecords: STORE_BATCH_RECORDS, now: () => store.now() } : FILE_BATCHING,
    );
    this.#trail.follow(this, this.nodeId);
    this.#supervisor = new Supervisor({
      store, pool: null, agents, nodeId: this.nodeId, concurrency: o.concurrency, prefetch: o.prefetch ?? null, settings,
      pollIntervalMs: o.pollIntervalMs, emit: (event, payload) => this.safeEmit(event, payload),
    });
  }

  /**
   * Opens (creating when missing) a root and its store; starts working unless `work: false`, and
   * then resolves once the agent threads have started.
   */
  static async open(options: EngineOptions = {}): Promise<RelayMesh> {
    const parsed = EngineOptionsSchema.safeParse(options);
    if (!parsed.success) throw new InvalidOptionsError(`RelayMesh.open: ${z.prettifyError(parsed.error)}`, { cause: parsed.error });
    const o = parsed.data;
    machineUsage(); // a bad RELAYMESH_TEST_MACHINE_USAGE is refused here, not on every heartbeat
    const paths = rootPaths(o.root ?? defaultRoot());
    const config = readRootConfig(paths, o.settings);
    const { agents, retryPolicies } = loadAgents(paths, config, o.agents);
    ensureRoot(paths);
    // The settings a root starts with are the baseline `reload-settings` reports changes against.
    if (!existsSync(settingsFingerprintPath(paths))) writeJsonFile(settingsFingerprintPath(paths), fingerprint(config.settings));
    const store = await openStore(o.store ?? (process.env.RELAYMESH_STORE || undefined), paths.db, config.settings, { concurrency: o.concurrency, thread: o.storeThread });
    // On a shared store the cluster's copy of the settings that must agree wins over the file's.
    const cluster = store.shared ? await readClusterSettings(store).catch(async (error: unknown) => { await store.close(); throw error; }) : null;
    const mesh = new RelayMesh(o, paths, store, cluster ? underCluster(config.settings, cluster) : config.settings, agents, retryPolicies);
    mesh.#fileSettings = config.settings;
    mesh.#clusterVersion = cluster?.version ?? 0;
    store.onError?.((error) => mesh.safeEmit("engine:error", { error }));
    if (o.work) {
      await mesh.#start().catch(async (error: unknown) => {
        await mesh.close({ force: true, timeoutMs: 0 }).catch(() => {});
        throw error;
      });
    }
    return mesh;
  }

  /**
   * The audit: the root's JSONL file, or on a shared store (PostgreSQL) the cluster-wide records of
   * every node. Writes are buffered and batched; reads write what is buffered first.
   */
  get audit(): AuditTrail {
    return this.#trail;
  }

  get state(): EngineState {
    return this.#state;
  }

  get settings(): Settings {
    return this.#settings;
  }

  /** Step attempts this engine ran to an outcome. */
  get attempts(): { executed: number; succeeded: number; failed: number } {
    return { ...this.#supervisor.stats };
  }

  /**
   * Begins claiming and running steps (after `open({ work: false })`). The returned promise
   * resolves once the agent threads have started; it never rejects (a failure to start them is
   * emitted as `engine:error`).
   */
  start(): Promise<void> {
    this.#assertOpen("start");
    return this.#start().catch((error: Error) => this.safeEmit("engine:error", { error }));
  }

  async #start(): Promise<void> {
    if (this.#state === "running") return this.#poolReady ?? undefined;
    this.#state = "running";
    if (!this.#poolReady) {
      // Loaded here: a process that only submits and reads never loads Piscina.
      const { AgentPool } = await import("./pool/pool.js");
      if (this.#state !== "running") return;
      this.#pool = new AgentPool({
        onAgentMessage: (msg) => this.#supervisor.onAgentMessage(msg),
        concurrency: this.#options.concurrency,
        ...(this.#options.threads !== undefined ? { threads: this.#options.threads } : {}),
        ...(this.#options.piscina ? { piscina: this.#options.piscina } : {}),
      });
      this.#supervisor.attachPool(this.#pool);
      const pool = this.#pool;
      this.#poolReady = pool.warmUp().then(() => {}, (error: unknown) => {
        throw new RelayMeshError(ErrorCode.AGENT_FAILED, `the agent threads did not start: ${(error as Error)?.message ?? error}`, { cause: error });
      });
    }
    this.#supervisor.startWorking();
    // The first node to work on a shared store gives it its settings.
    if (this.store.shared && this.#clusterVersion === 0) {
      this.#clusterVersion = (await publishClusterSettings(this.store, this.#fileSettings, `node:${this.nodeId}`, this.store.now())).version;
    }
    this.#beatNode();
    if (!this.#flowTimer) {
      this.#flowTimer = setInterval(() => void this.#flowTick(), Math.min(1_000, Math.max(100, this.#options.pollIntervalMs)));
      this.#flowTimer.unref();
    }
    if (!this.#nodeTimer) {
      this.#beatIntervalMs = Math.max(100, Math.floor(this.#settings.suspectAfterMs / 3));
      this.#nodeTimer = setInterval(() => this.#beatNode(), this.#beatIntervalMs);
      this.#nodeTimer.unref();
    }
    return this.#poolReady;
  }

  /** Submits a one-step task. Resolves once committed. */
  async submit(spec: SingleTaskSpec, options: SubmitOptions = {}): Promise<{ taskId: string; created: boolean }> {
    this.#assertOpen("submit");
    const task = buildSingleTask(spec, await this.#submitContext("submit", spec), options);
    const { taskId, created } = await this.#supervisor.submit(task);
    if (created) this.#auditSubmit(task);
    return { taskId, created };
  }

  /** Validates and submits a workflow (the JSON of CONTRACT.md). Resolves once committed. */
  async submitWorkflow(spec: unknown, options: SubmitOptions & { source?: string } = {}): Promise<{ taskId: string; created: boolean; steps: number }> {
    this.#assertOpen("submitWorkflow");
    const task = buildWorkflowTask(spec, await this.#submitContext(options.source ?? "workflow", spec), options);
    const result = await this.#supervisor.submit(task);
    if (result.created) this.#auditSubmit(task);
    return result;
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
   * it. Throws NotFoundError for an unknown id, a RELAYMESH_ERR_WAIT_TIMEOUT error past `timeoutMs`,
   * and a RELAYMESH_ERR_INVALID_STATE error once the engine is closed (it no longer watches the task).
   */
  async waitFor(taskId: string, options: { timeoutMs?: number; pollIntervalMs?: number } = {}): Promise<TaskWithSteps> {
    const o = parseArgument(WaitOptionsSchema, options, "waitFor");
    const first = await this.getTask(taskId);
    if (TERMINAL_TASK_STATUSES.has(first.status)) return first;
    const timeoutMs = o.timeoutMs ?? Infinity;
    const poll = o.pollIntervalMs ?? 250;
    await new Promise<void>((resolve, reject) => {
      const done = (error?: Error) => {
        this.off("task:finished", onFinished);
        this.off("engine:closing", onClosing);
        clearInterval(poller);
        if (deadline) clearTimeout(deadline);
        if (error) reject(error); else resolve();
      };
      const onFinished = (e: { taskId: string }) => { if (e.taskId === taskId) done(); };
      this.on("task:finished", onFinished);
      // A close ends the wait once it is done (a task drained meanwhile still resolves it first).
      const onClosing = () => {
        const closed = () => done(new InvalidStateError(`waitFor: the engine was closed before task ${taskId} finished`));
        // engine:closing is emitted just before the close's promise is set.
        void Promise.resolve().then(() => this.#closing).then(closed, closed);
      };
      this.on("engine:closing", onClosing);
      if (this.#closing) onClosing();
      const poller = setInterval(() => {
        // A store that is briefly unreachable (a restart) is reported, and the wait goes on.
        this.store.taskStatuses([taskId]).then((m) => { if (TERMINAL_TASK_STATUSES.has(m.get(taskId)!)) done(); },
          (error: Error) => this.safeEmit("engine:error", { error }));
      }, poll);
      const deadline = Number.isFinite(timeoutMs)
        ? setTimeout(() => done(new RelayMeshError(ErrorCode.WAIT_TIMEOUT, `task ${taskId} did not finish within ${timeoutMs} ms`)), timeoutMs)
        : null;
    });
    return this.getTask(taskId);
  }

  /**
   * Cancels a task. "hard" (default) aborts running steps (their AbortSignal fires; late results
   * are refused) and cancels the rest at once; "soft" cancels only what has not started and
   * lets running steps finish. Throws NotFoundError for an unknown id.
   */
  async cancel(taskId: string, options: { mode?: "hard" | "soft"; reason?: string } = {}): Promise<{ taskId: string; status: TaskStatus; cancelledSteps: string[] }> {
    this.#assertOpen("cancel");
    const mode = options.mode ?? "hard";
    const result = await this.#supervisor.cancelTask(taskId, mode, options.reason);
    if (!result) throw new NotFoundError(`task ${taskId} not found in ${this.store.location}`);
    if (result.cancelledSteps.length > 0) {
      this.#trail.record({
        action: "task.cancel", actor: this.actor, resource: `task/${taskId}`, task_id: taskId, trace_id: await this.#traceIdOf(taskId),
        details: { mode, reason: options.reason ?? null, cancelledSteps: result.cancelledSteps, status: result.status },
      });
    }
    return { taskId, status: result.status, cancelledSteps: result.cancelledSteps };
  }

  /**
   * Re-runs a dead-lettered task from its dead steps (a new replay round: attempts count from
   * zero again); successful steps keep their outputs. Throws NotFoundError for an unknown id and
   * InvalidStateError when the task is not DEAD_LETTER.
   */
  async replay(taskId: string): Promise<{ replayed: string[] }> {
    this.#assertOpen("replay");
    const result = await this.#supervisor.replayTask(taskId);
    if (!result) throw new NotFoundError(`task ${taskId} not found in ${this.store.location}`);
    if (!result.replayed) throw new InvalidStateError(`task ${taskId} is ${result.status}; only DEAD_LETTER tasks can be replayed`);
    await this.#auditReplay(taskId, result.steps, result.round);
    return { replayed: [taskId] };
  }

  /** Replays up to `limit` tasks of `status` (default DEAD_LETTER), oldest dead letters first. */
  async replayBatch(options: { status?: TaskStatus; limit?: number } = {}): Promise<{ replayed: string[] }> {
    this.#assertOpen("replayBatch");
    const status = options.status ?? "DEAD_LETTER";
    const { tasks } = await this.store.listTasks({ status, limit: options.limit ?? 100, offset: 0 });
    const replayed: string[] = [];
    for (const t of tasks.reverse()) {
      const result = await this.#supervisor.replayTask(t.taskId);
      if (!result?.replayed) continue;
      await this.#auditReplay(t.taskId, result.steps, result.round);
      replayed.push(t.taskId);
    }
    return { replayed };
  }

  /**
   * Deletes finished tasks and dead letters older than their retention; forgets old idempotency
   * keys. With `namePrefix`, only of tasks whose name starts with it (e.g. `bench:`).
   */
  async purge(options: { doneRetentionDays?: number; deadRetentionDays?: number; idempotencyTtlDays?: number; namePrefix?: string } = {}) {
    this.#assertOpen("purge");
    const now = this.store.now();
    const days = (d: number) => now - d * 86_400_000;
    const retention = { doneRetentionDays: options.doneRetentionDays ?? 7, deadRetentionDays: options.deadRetentionDays ?? 30, idempotencyTtlDays: options.idempotencyTtlDays ?? 7 };
    const counts = await this.store.purge({
      finishedBeforeMs: days(retention.doneRetentionDays), deadBeforeMs: days(retention.deadRetentionDays),
      idempotencyBeforeMs: days(retention.idempotencyTtlDays), ...(options.namePrefix !== undefined ? { namePrefix: options.namePrefix } : {}),
    });
    this.#trail.record({ action: "store.purge", actor: this.actor, resource: "tasks", details: { ...retention, namePrefix: options.namePrefix ?? null, ...counts } });
    return { ...counts, retention };
  }

  /** Writes the dead-lettered tasks (newest first, at most `limit`) to a JSON file. */
  async deadExport(out: string, options: { limit?: number } = {}): Promise<{ out: string; count: number }> {
    return exportDeadLetters(this.store, out, options.limit ?? 1000);
  }

  /** Writes one task, its workflow and its audit records to a JSON file. */
  async taskExport(taskId: string, out: string): Promise<{ out: string; count: number; auditRecords: number }> {
    const result = await exportTask(this.store, this.audit, taskId, out);
    if (!result) throw new NotFoundError(`task ${taskId} not found in ${this.store.location}`);
    return result;
  }

  /** Counts per status and the SLA figures. */
  async stats() {
    const snapshot = await this.store.opsSnapshot(this.store.now());
    const unservable = unservableAgents(snapshot, await this.store.listNodes());
    return { tasks: snapshot.tasks, steps: snapshot.steps, ...slaFigures(snapshot), unservable };
  }

  /**
   * Every agent this node or another node of the store serves, with the live nodes (running and
   * ALIVE) that serve it. `kind` is this node's kind of it, or "remote" when only others have it.
   */
  async agentDirectory(): Promise<{ id: string; kind: string; nodes: string[] }[]> {
    const directory = agentDirectory(await this.store.listNodes());
    const local = new Map(this.agents.list().map((a) => [a.id, a.kind as string]));
    const ids = [...new Set([...local.keys(), ...directory.keys()])].sort();
    return ids.map((id) => ({ id, kind: local.get(id) ?? "remote", nodes: directory.get(id) ?? [] }));
  }

  /** READY steps that no live node can run (no live node serves their agent), per agent. */
  async unservable(): Promise<UnservableAgent[]> {
    return unservableAgents(await this.store.opsSnapshot(this.store.now()), await this.store.listNodes());
  }

  /** Prometheus text, with every figure read from the store. */
  async metrics(): Promise<{ contentType: string; text: string }> {
    return renderMetrics(await this.store.opsSnapshot(this.store.now()));
  }

  /**
   * Store checks (open, writable, PRAGMAs as configured) and node heartbeats. With `nodeId`:
   * that node's heartbeat must be fresh (within `suspectAfterMs`). Without: unhealthy when
   * worker nodes are registered as running but none has a fresh heartbeat (nothing can make
   * progress); stale ones (crashed workers) are named in the detail either way.
   */
  async health(options: { nodeId?: string } = {}): Promise<{ ok: boolean; checks: HealthCheck[] }> {
    const checks = await this.store.health();
    const now = this.store.now();
    const fresh = (n: NodeRecord) => now - n.lastHeartbeatMs <= this.#settings.suspectAfterMs;
    const describe = (n: NodeRecord) => `${n.nodeId} (${n.status}, heartbeat ${now - n.lastHeartbeatMs} ms ago)`;
    try {
      const nodes = await this.store.listNodes();
      if (options.nodeId !== undefined) {
        const node = nodes.find((n) => n.nodeId === options.nodeId);
        checks.push({
          name: "node-heartbeat",
          ok: node !== undefined && node.state === "running" && fresh(node),
          detail: node === undefined ? `no node "${options.nodeId}" is known` : node.state === "stopped" ? `${options.nodeId} stopped` : describe(node),
        });
      } else {
        const running = nodes.filter((n) => n.state === "running");
        const live = running.filter(fresh);
        const stale = running.filter((n) => !fresh(n));
        checks.push({
          name: "node-heartbeats",
          ok: running.length === 0 || live.length > 0,
          detail: running.length === 0 ? "no worker node is running"
            : `${live.length} of ${running.length} running node(s) with a fresh heartbeat${stale.length ? `; stale: ${stale.map(describe).join(", ")}` : ""}`,
        });
      }
    } catch (error) {
      checks.push({ name: "node-heartbeats", ok: false, detail: (error as Error).message });
    }
    if (this.store.shared) {
      try {
        const differs = await this.settingsDisagreement();
        checks.push({
          name: "cluster-settings", ok: differs.length === 0,
          detail: differs.length === 0 ? "this root's settings agree with the cluster's"
            : `${this.paths.settings} disagrees with the cluster's settings on ${differs.join(", ")}; this node uses the cluster's values ` +
              `(run reload-settings on this root to make its file the cluster's, or change the file to match)`,
        });
      } catch (error) {
        checks.push({ name: "cluster-settings", ok: false, detail: (error as Error).message });
      }
    }
    return { ok: checks.every((c) => c.ok), checks };
  }

  /**
   * Reads the settings file again and applies it to new leases, retries and claims. An invalid
   * file throws and changes nothing. Returns the names (never the values) of changed fields. On a
   * shared store, changed cluster fields are published to every node (recorded once, here).
   */
  async reloadSettings(): Promise<{ changedFields: string[] }> {
    const actor = `node:${this.nodeId}`;
    let next: Settings;
    try {
      next = this.#readSettings(actor);
    } finally {
      await this.#settingsWrites();
    }
    const changed = changedFields(fingerprint(this.#fileSettings), fingerprint(next));
    if (changed.length > 0) {
      this.#fileSettings = next;
      if (this.store.shared) this.#clusterVersion = (await publishClusterSettings(this.store, next, actor, this.store.now())).version;
      this.#applySettings(next);
      this.#settingsChanged(actor, changed, null);
      await this.#settingsWrites();
    }
    return { changedFields: changed };
  }

  /**
   * Validates the settings file and records it as the root's current settings: returns the
   * fields changed since the last recorded settings (names only) and adds them to the history.
   * On a shared store the file's cluster fields become the cluster's: every running node applies
   * them within one maintenance tick. An invalid file throws (and is recorded as a failed
   * reload); nothing else changes.
   */
  async recordSettings(): Promise<{ changedFields: string[] }> {
    let next: Settings;
    try {
      next = this.#readSettings(this.actor);
    } finally {
      await this.#settingsWrites();
    }
    const path = settingsFingerprintPath(this.paths);
    const previous = existsSync(path) ? JSON.parse(readFileSync(path, "utf8")) as SettingsFingerprint : {};
    const current = fingerprint(next);
    let changed = changedFields(previous, current);
    if (this.store.shared) {
      const cluster = await readClusterSettings(this.store);
      const differs: string[] = cluster ? disagreements(next, cluster) : [...CLUSTER_FIELDS];
      if (differs.length > 0) await publishClusterSettings(this.store, next, this.actor, this.store.now());
      // Cluster fields count as changed when they differ from the cluster's copy, the others against this root's last record.
      const local = changed.filter((f) => !(CLUSTER_FIELDS as readonly string[]).includes(f));
      changed = [...new Set([...local, ...(cluster ? differs : changed)])].sort();
    }
    writeJsonFile(path, current);
    this.#settingsChanged(this.actor, changed, null);
    await this.#settingsWrites();
    return { changedFields: changed };
  }

  /** Cluster fields on which this root's settings file differs from the shared store's copy ([] on SQLite or when none is kept yet). */
  async settingsDisagreement(): Promise<string[]> {
    if (!this.store.shared) return [];
    const cluster = await readClusterSettings(this.store);
    return cluster ? disagreements(this.#fileSettings, cluster) : [];
  }

  /** Applies the cluster settings when another node published a new version (each maintenance tick). */
  async #followClusterSettings(): Promise<void> {
    if (!this.store.shared) return;
    const cluster = await readClusterSettings(this.store);
    if (!cluster || cluster.version <= this.#clusterVersion) return;
    const before = fingerprint(this.#settings);
    this.#clusterVersion = cluster.version;
    this.#applySettings(underCluster(this.#fileSettings, cluster));
    const changed = changedFields(before, fingerprint(this.#settings));
    if (changed.length > 0) {
      this.#trail.record({ action: "settings.apply", actor: `node:${this.nodeId}`, resource: "settings", details: { changedFields: changed, clusterVersion: cluster.version, by: cluster.by } });
    }
  }

  /** Makes `settings` (under the cluster's, on a shared store) this node's: new leases, retries and claims use them. */
  #applySettings(settings: Settings): void {
    this.#settings = settings;
    this.#supervisor.updateSettings(settings);
  }

  /** Settings changes (field names only), newest first: the store's history and, for older roots, the audit log's. */
  async settingsHistory(limit: number): Promise<SettingsChange[]> {
    await this.#trail.flush();
    return mergeSettingsHistory(await this.store.settingsHistory(limit), await legacySettingsHistory(this.#auditFile), limit);
  }

  /** The settings file, validated; a failure is recorded as a failed reload by `actor` and thrown. */
  #readSettings(actor: string): Settings {
    try {
      return readRootConfig(this.paths, this.#options.settings).settings;
    } catch (error) {
      this.#settingsChanged(actor, [], (error as Error).message);
      throw error;
    }
  }

  /** Records a settings change (or a failed reload) in the audit log and the store's history. */
  #settingsChanged(actor: string, changed: string[], error: string | null): void {
    const entryId = randomUUID();
    this.#trail.record({
      action: "settings.reload", actor, resource: "settings", ...(error !== null ? { result: "error" as const } : {}),
      details: error !== null ? { error, entryId } : { changedFields: changed, entryId },
    });
    void this.#trail.flush();
    const write = this.store.addSettingsChange({ entryId, atMs: Date.now(), nodeId: this.nodeId, actor, result: error !== null ? "error" : "ok", changedFields: changed, error })
      .catch((e: Error) => this.safeEmit("engine:error", { error: e }))
      .finally(() => this.#pendingSettings.delete(write));
    this.#pendingSettings.add(write);
  }

  /** Settles the settings history writes under way. */
  async #settingsWrites(): Promise<void> {
    await Promise.all([...this.#pendingSettings]);
  }

  /** Re-reads the settings file every `intervalMs`; errors are reported as `engine:error` and leave the settings as they are. */
  watchSettings(intervalMs: number): void {
    parseArgument(IntervalMsSchema, intervalMs, "watchSettings");
    if (this.#reloadTimer) clearInterval(this.#reloadTimer);
    this.#reloadTimer = setInterval(() => {
      this.reloadSettings().catch((error: Error) => this.safeEmit("engine:error", { error }));
    }, intervalMs);
    this.#reloadTimer.unref();
  }

  /**
   * A namespace of the checkpoint store (a task's checkpoints live in the namespace named by its
   * task id). Writes from here are an operator's: not fenced, audited.
   */
  kv(namespace: string): KvNamespace {
    const transport: KvTransport = {
      get: async (ns, key) => {
        const entry = await this.store.kvGet(ns, key);
        return entry ? { found: true, value: entry.value } : { found: false };
      },
      getAll: async (ns) => Object.fromEntries((await this.store.kvList(ns, { limit: 100_000 })).map((e) => [e.key, e.value])),
      write: async (ns, entries) => {
        this.#assertOpen("kv write");
        await this.#supervisor.kvWrite({ ref: null, namespace: ns, entries, writer: this.actor });
        this.#trail.record({
          action: entries.some((e) => e.valueJson === null) ? "kv.delete" : "kv.put", actor: this.actor, resource: `kv/${ns}`,
          task_id: null, details: { namespace: ns, keys: entries.map((e) => e.key) },
        });
      },
    };
    return new KvNamespace(namespace, transport, { maxValueBytes: this.#settings.maxPayloadBytes });
  }

  /**
   * Calls `listener` with every change to a namespace after `fromVersion` (default 0: every key
   * there is, then each change), whichever process made it. Returns the function that stops it.
   */
  watchKv(namespace: string, listener: (change: KvChange) => void, options: { fromVersion?: number; intervalMs?: number } = {}): () => void {
    const intervalMs = parseArgument(IntervalMsSchema.optional(), options.intervalMs, "watchKv") ?? 250;
    let after = options.fromVersion ?? 0;
    let busy = false;
    let stopped = false;
    const poll = async () => {
      if (busy || stopped) return;
      busy = true;
      try {
        for (;;) {
          const changes = await this.store.kvChanges(namespace, after, 1000);
          for (const c of changes) {
            after = Math.max(after, c.version);
            if (!stopped) listener(c);
          }
          if (changes.length < 1000) break;
        }
      } catch (error) {
        this.safeEmit("engine:error", { error: error as Error });
      } finally {
        busy = false;
      }
    };
    const onLocal = (e: { namespace: string }) => { if (e.namespace === namespace) void poll(); };
    this.on("kv:changed", onLocal);
    const timer = setInterval(() => void poll(), intervalMs);
    timer.unref();
    void poll();
    return () => {
      stopped = true;
      clearInterval(timer);
      this.off("kv:changed", onLocal);
    };
  }

  /** The cluster-wide fencing epoch. */
  async clusterState(): Promise<{ clusterEpoch: number }> {
    return { clusterEpoch: await this.store.clusterEpoch() };
  }

  /**
   * Fences everything in flight, on every node of this store: bumps the cluster epoch, and every
   * RUNNING step gets a new lease epoch and is READY again, so its owner's next write is refused.
   */
  async bumpClusterEpoch(reason: string): Promise<{ clusterEpoch: number; fencedSteps: number }> {
    this.#assertOpen("bumpClusterEpoch");
    const { clusterEpoch, fencedSteps } = await this.#supervisor.bumpClusterEpoch();
    this.#trail.record({
      action: "cluster.epoch-bump", actor: this.actor, resource: "cluster", details: { reason, clusterEpoch, fencedSteps: fencedSteps.length },
    });
    return { clusterEpoch, fencedSteps: fencedSteps.length };
  }

  /** A consistent copy of this root (store, settings, agents, audit log) in a new folder. */
  async snapshotExport(outDir: string): Promise<{ out: string }> {
    await this.#trail.flush();
    const { exportSnapshot } = await import("./ops/snapshot.js");
    const result = await exportSnapshot(this.store, this.paths, outDir);
    this.#trail.record({ action: "root.snapshot-export", actor: this.actor, resource: "root", details: { out: result.out } });
    return result;
  }

  /**
   * Copies this store's tasks (every status, with their steps, outputs, checkpoints, keys, lease
   * conflicts and ownership events) and the settings history into the store at `url` (see
   * `migrateStore`). A target holding another store's tasks is refused unless `merge`.
   */
  async migrateTo(url: string, options: { merge?: boolean } = {}): Promise<MigrateResult> {
    this.#assertOpen("migrateTo");
    await this.#trail.flush();
    const target = await openStore(url, join(this.paths.dir, "relaymesh.db"), this.#settings);
    try {
      const { migrateStore } = await import("./ops/migrate.js");
      const result = await migrateStore(this.store, target, { merge: options.merge ?? false, nowMs: target.now(), legacySettings: await legacySettingsHistory(this.#auditFile) });
      this.#trail.record({ action: "store.migrate", actor: this.actor, resource: "store", details: { to: result.to, copied: result.copied, rerun: result.rerun } });
      return result;
    } finally {
      await target.close();
    }
  }

  /** Known nodes with their standing: ALIVE, SUSPECT or DEAD by heartbeat age. */
  async members(): Promise<NodeRecord[]> {
    return this.store.listNodes();
  }

  /**
   * One maintenance tick, as this engine's node: re-evaluates every node's standing, reclaims
   * the steps of DEAD nodes (at most `recoverLimit`) and expired leases, prunes old DEAD rows.
   * A node running a tick is alive: when this engine was opened with a `nodeId` (or is working),
   * that node's heartbeat is recorded first, so it never rates itself DEAD.
   */
  async maintenance(options: { recoverLimit?: number; prune?: boolean } = {}): Promise<MaintenanceResult> {
    this.#assertOpen("maintenance");
    if (this.#options.nodeId !== undefined || this.#state === "running") {
      await this.store.heartbeatNode({ nodeId: this.nodeId, hostname: hostname(), pid: process.pid }, this.store.now());
    }
    return this.#maintenance({ recoverLimit: options.recoverLimit ?? this.#settings.meshRecoverPerTick, prune: options.prune ?? true, nowMs: this.store.now() });
  }

  /** Deletes up to `limit` DEAD node rows older than `olderThanMs` (default: the settings'). */
  async meshPrune(options: { olderThanMs?: number; limit?: number } = {}): Promise<{ pruned: number }> {
    this.#assertOpen("meshPrune");
    const pruned = await this.store.pruneNodes(this.store.now() - (options.olderThanMs ?? this.#settings.meshPruneOlderThanMs), options.limit ?? this.#settings.meshPruneLimit);
    if (pruned > 0) this.#trail.record({ action: "mesh.prune", actor: this.actor, resource: "nodes", details: { pruned } });
    return { pruned };
  }

  /** Reclaims and refused writes, newest first. */
  async ownershipEvents(options: { sinceMs?: number; limit?: number } = {}) {
    return this.store.ownershipEvents(options.sinceMs ?? 0, options.limit ?? 100);
  }

  /** Claims and submits the files dropped in `<root>/inbox/{high,normal,low}/` (one pass). */
  async ingest(): Promise<InboxPassResult> {
    this.#assertOpen("ingest");
    const { Inbox } = await import("./inbox/inbox.js");
    const inbox = new Inbox(this.root);
    return inbox.pass({ submitWorkflow: (spec, o) => this.submitWorkflow(spec, o) });
  }

  /**
   * Adds a cron schedule, or replaces the definition of the one with that name. Validates the
   * cron expression, time zone and workflow (exit-2 problems: nothing is written). Every node
   * sharing the store fires it; each slot fires once.
   */
  async addSchedule(input: ScheduleInput): Promise<{ schedule: ReturnType<typeof scheduleView>; replaced: boolean }> {
    this.#assertOpen("addSchedule");
    const s = parseSchedule(input, "schedule");
    buildWorkflowTask(s.workflow, this.#buildContext("schedule: workflow"));
    const def = {
      name: s.name, cron: s.cron, timezone: s.timezone ?? null, spec: s.workflow, overlap: s.overlap, catchUp: s.catchUp,
      catchUpWindowMs: s.catchUpWindowMs ?? null, jitterMs: s.jitterMs, paused: s.paused,
    };
    const now = this.store.now();
    const { schedule, replaced } = await this.#supervisor.operate(() => this.store.putSchedule({ ...def, ...nextFrom(def, now) }, now));
    this.#trail.record({ action: replaced ? "schedule.replace" : "schedule.add", actor: this.actor, resource: `schedule/${s.name}`, details: { cron: s.cron, timezone: def.timezone } });
    return { schedule: scheduleView(schedule), replaced };
  }

  /** Every schedule, by name, with its next fire time and last task. */
  async listSchedules(): Promise<ReturnType<typeof scheduleView>[]> {
    return (await this.store.listSchedules()).map(scheduleView);
  }

  /** One schedule; throws NotFoundError. */
  async getSchedule(name: string): Promise<ReturnType<typeof scheduleView>> {
    return scheduleView(await this.#schedule(name));
  }

  /** Pauses a schedule: no slot fires until it is resumed (slots in between are not caught up). */
  async pauseSchedule(name: string): Promise<ReturnType<typeof scheduleView>> {
    return this.#setPaused(name, true);
  }

  /** Resumes a paused schedule from the next slot after now. */
  async resumeSchedule(name: string): Promise<ReturnType<typeof scheduleView>> {
    return this.#setPaused(name, false);
  }

  /** Deletes a schedule (the tasks it fired stay) and returns it as it was; throws NotFoundError. */
  async removeSchedule(name: string): Promise<{ schedule: ReturnType<typeof scheduleView>; removed: true }> {
    this.#assertOpen("removeSchedule");
    const schedule = scheduleView(await this.#schedule(name));
    if (!(await this.#supervisor.operate(() => this.store.removeSchedule(name)))) throw new NotFoundError(`schedule "${name}" not found in ${this.store.location}`);
    this.#trail.record({ action: "schedule.remove", actor: this.actor, resource: `schedule/${name}`, details: {} });
    return { schedule, removed: true };
  }

  /** Fires a schedule now, outside its slots (paused or not); returns the new task. */
  async triggerSchedule(name: string): Promise<{ schedule: ReturnType<typeof scheduleView>; taskId: string }> {
    this.#assertOpen("triggerSchedule");
    const s = await this.#schedule(name);
    const now = this.store.now();
    const task = this.#scheduledTask(s, now);
    const result = await this.#fire({
      name, fires: [{ slotKey: `manual:${task.taskId}`, slotMs: now, task, outcome: "fired" }], missed: 0, nodeId: this.nodeId, nowMs: now,
    });
    if (result.created.length === 0) throw new NotFoundError(`schedule "${name}" not found in ${this.store.location}`);
    this.#trail.record({ action: "schedule.trigger", actor: this.actor, resource: `schedule/${name}`, task_id: task.taskId, details: {} });
    return { schedule: scheduleView(await this.#schedule(name)), taskId: result.created[0]!.taskId };
  }

  async #schedule(name: string): Promise<ScheduleRecord> {
    const s = await this.store.getSchedule(name);
    if (!s) throw new NotFoundError(`schedule "${name}" not found in ${this.store.location}`);
    return s;
  }

  async #setPaused(name: string, paused: boolean): Promise<ReturnType<typeof scheduleView>> {
    this.#assertOpen(paused ? "pauseSchedule" : "resumeSchedule");
    const s = await this.#schedule(name);
    const next = paused ? { nextSlotMs: s.nextSlotMs, nextAtMs: s.nextAtMs } : nextFrom(s, this.store.now());
    const updated = await this.#supervisor.operate(() => this.store.setSchedulePaused(name, paused, next, this.store.now()));
    if (!updated) throw new NotFoundError(`schedule "${name}" not found in ${this.store.location}`);
    this.#trail.record({ action: paused ? "schedule.pause" : "schedule.resume", actor: this.actor, resource: `schedule/${name}`, details: {} });
    return scheduleView(updated);
  }

  /** Fires schedule slots through the supervisor's turn: it claims their tasks in its next commit. */
  #fire(fire: ScheduleFire): Promise<ScheduleFireResult> {
    return this.#supervisor.operate(() => this.store.fireSchedule(fire));
  }

  #scheduledTask(s: ScheduleRecord, slotMs: number): NewTask {
    const task = buildWorkflowTask(s.spec, { ...this.#buildContext(`schedule "${s.name}"`), nowMs: this.store.now() });
    return { ...task, idempotencyKey: null, dedupe: null, schedule: { name: s.name, slotKey: slotKey(slotMs) } };
  }

  /**
   * The time-driven work of a working node, every poll interval: cancels tasks past their
   * deadline and fires due schedules (one indexed read each when nothing is due).
   */
  #flowTick(): Promise<void> {
    if (this.#flowTicking) return this.#flowTicking;
    this.#flowTicking = (async () => {
      const now = this.store.now();
      for (const taskId of await this.store.dueDeadlines(now, 100)) {
        await this.cancel(taskId, { mode: "hard", reason: "deadline" });
      }
      const fired = await scheduleTick({
        store: this.store, nodeId: this.nodeId, nowMs: now,
        build: (s, slotMs) => this.#scheduledTask(s, slotMs),
        fire: (f) => this.#fire(f),
        cancelPrevious: async (taskId, s) => { await this.cancel(taskId, { mode: "hard", reason: `schedule "${s.name}" overlap` }); },
        onError: (error, s) => this.safeEmit("engine:error", { error: new RelayMeshError(ErrorCode.INVALID_STATE, `schedule "${s.name}": ${error.message}`, { cause: error }) }),
      });
      for (const f of fired) {
        this.#trail.record({ action: "schedule.fire", actor: `node:${this.nodeId}`, resource: `schedule/${f.name}`, task_id: f.taskId, details: { slot: f.slotKey } });
        this.safeEmit("task:submitted", { taskId: f.taskId, created: true });
      }
    })().catch((error: Error) => this.safeEmit("engine:error", { error })).finally(() => { this.#flowTicking = null; });
    return this.#flowTicking;
  }

  /** Runs everything runnable now (after one maintenance pass), then stops working. For `worker --once`. */
  async runUntilIdle(): Promise<void> {
    this.#assertOpen("runUntilIdle");
    await this.#flowTick();
    await this.#start();
    await this.#supervisor.idle();
    this.#supervisor.stopClaiming();
    this.#state = "idle";
  }

  /**
   * Graceful shutdown, idempotent (later calls return the first call's promise):
   * 1. stop claiming; 2. let in-flight steps finish for up to `timeoutMs` (at once with `force`),
   *    still heartbeating them, so their leases hold and a cancel elsewhere still reaches them;
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
      if (this.#flowTimer) clearInterval(this.#flowTimer);
      await attempt(() => this.#flowTicking);
      await attempt(() => this.#supervisor.stopClaiming());
      if (!force) await attempt(() => withTimeout(this.#supervisor.idle(), timeoutMs));
      await attempt(() => this.#supervisor.abortAll("release", new RelayMeshError(ErrorCode.ABORTED, "engine is closing")));
      await attempt(async () => {
        await withTimeout(this.#supervisor.idle(), 5_000);
        const left = this.#supervisor.inFlight;
        if (left > 0) throw new ShutdownTimeoutError(`${left} step(s) did not stop within 5000 ms of being aborted; their leases will expire and be reclaimed`);
      });
      await attempt(() => this.#supervisor.flushNow());
      await attempt(() => this.#supervisor.stopHeartbeats());
      await attempt(() => this.#supervisor.closeAgents());
      if (this.#nodeTimer) {
        clearInterval(this.#nodeTimer);
        await attempt(() => this.store.stopNode({ nodeId: this.nodeId, pid: process.pid }, this.store.now()));
      }
      if (this.#reloadTimer) clearInterval(this.#reloadTimer);
      await attempt(() => this.#settingsWrites());
      await attempt(async () => { await this.#trail.close(); this.#auditFile.close(); });
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

  #auditSubmit(task: NewTask): void {
    this.#trail.record({
      action: "task.submit", actor: this.actor, resource: `task/${task.taskId}`, task_id: task.taskId,
      trace_id: task.traceId, span_id: task.parentSpanId,
      details: { steps: task.steps.length, name: task.name, idempotencyKey: task.idempotencyKey },
    });
  }

  async #auditReplay(taskId: string, steps: string[], round: number): Promise<void> {
    this.#trail.record({
      action: "task.replay", actor: this.actor, resource: `task/${taskId}`, task_id: taskId, trace_id: await this.#traceIdOf(taskId),
      details: { steps, round },
    });
  }

  async #traceIdOf(taskId: string): Promise<string | null> {
    return (await this.store.getTask(taskId))?.traceId ?? null;
  }

  /** The node's own beat: heartbeat, then (while working) a maintenance tick and the safety-mode check. */
  #beatNode(): void {
    this.#stopAttemptsIfCutOff();
    if (this.#beating) return;
    this.#beating = true;
    (async () => {
      const sentAt = performance.now();
      await this.store.heartbeatNode({
        nodeId: this.nodeId, hostname: hostname(), pid: process.pid, agents: [...this.agents.ids()].sort(),
        load: { ...machineUsage(), running: this.#supervisor.inFlight, capacity: this.#supervisor.capacity },
      }, this.store.now());
      this.#beatTakenAt = Math.max(this.#beatTakenAt, sentAt);
      if (this.#state !== "running") return;
      await this.#followClusterSettings();
      const now = this.store.now();
      const prune = now - this.#lastPruneMs >= this.#settings.meshPruneIntervalMs;
      await this.#maintenance({ recoverLimit: this.#settings.meshRecoverPerTick, prune, nowMs: now });
      if (prune) this.#lastPruneMs = now;
      const nodes = await this.store.listNodes();
      const me = nodes.find((n) => n.nodeId === this.nodeId);
      this.#supervisor.setRelativeLoad(this.#settings.claimPolicy === "resource_usage" ? relativeLoad(this.nodeId, nodes) : null);
      this.#supervisor.setPaused(this.#settings.pauseWorkerWhenLocalNotAlive && me !== undefined && me.status !== "ALIVE");
    })().catch((error: Error) => this.safeEmit("engine:error", { error })).finally(() => { this.#beating = false; });
  }

  /**
   * A node cut off from the store (its heartbeats hang or fail, no error needed) may be declared DEAD
   * by the others `deadAfterMs` after the last heartbeat they saw, and its steps taken over even
   * before their leases end: so it stops its attempts (their results dropped, as of a lost lease)
   * once a fifth of that window is left. A beat far behind schedule means this process was paused
   * (SIGSTOP), not cut off: its late results go to the store, to be refused and recorded there.
   */
  #stopAttemptsIfCutOff(): void {
    const now = performance.now();
    const paused = now - this.#lastBeatAt > 3 * this.#beatIntervalMs;
    this.#lastBeatAt = now;
    if (paused) {
      this.#beatTakenAt = now;
      return;
    }
    const silentMs = now - this.#beatTakenAt;
    if (this.#supervisor.inFlight > 0 && silentMs > this.#settings.deadAfterMs * (1 - CUT_OFF_SAFETY_FRACTION)) {
      this.#supervisor.abortAll("drop", new LeaseLostError(
        `node ${this.nodeId} has not reached the store for ${Math.round(silentMs)} ms (deadAfterMs ${this.#settings.deadAfterMs}): other nodes may take its steps over, so its attempts stop`));
    }
  }

  async #maintenance(o: { recoverLimit: number; prune: boolean; nowMs: number }): Promise<MaintenanceResult> {
    const { maintenanceTick } = await import("./mesh/maintenance.js");
    const result = await this.#supervisor.maintain(() => maintenanceTick({ store: this.store, settings: this.#settings, nodeId: this.nodeId, ...o }));
    for (const m of result.membership) {
      this.#trail.record({ action: "node.membership", actor: `node:${this.nodeId}`, resource: `node/${m.nodeId}`, details: { from: m.from, to: m.to } });
    }
    if (result.reclaimedFromDead > 0 || result.pruned > 0) {
      this.#trail.record({
        action: "mesh.maintenance", actor: `node:${this.nodeId}`, resource: "nodes",
        details: { reclaimedFromDead: result.reclaimedFromDead, reclaimedExpired: result.reclaimedExpired, pruned: result.pruned },
      });
    }
    return result;
  }

  #buildContext(source: string): BuildContext {
    return { agents: this.agents, settings: this.#settings, retryPolicies: this.#retryPolicies, source, nowMs: this.store.now() };
  }

  /** The build context of a submission; one naming an agent this node lacks also accepts the agents other nodes serve. */
  async #submitContext(source: string, raw: unknown): Promise<BuildContext> {
    const ctx = this.#buildContext(source);
    if (namedAgents(raw).every((a) => this.agents.has(a))) return ctx;
    const meshAgents = new Set<string>();
    for (const n of await this.store.listNodes()) for (const a of n.agents ?? []) meshAgents.add(a);
    return { ...ctx, meshAgents };
  }

  #assertOpen(method: string): void {
    if (this.#state === "closing" || this.#state === "closed") {
      throw new InvalidStateError(`RelayMesh.${method}: the engine is ${this.#state}`);
    }
  }
}

/** A node whose heartbeats do not reach the store stops its attempts this fraction of `deadAfterMs` before others may declare it DEAD. */
const CUT_OFF_SAFETY_FRACTION = 0.2;

function settingsFingerprintPath(paths: RootPaths): string {
  return join(paths.auditDir, "settings-fingerprint.json");
}

/** Resolves with `promise`, or quietly after `ms` (the caller moves on to harder measures). */
function withTimeout(promise: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([promise, new Promise<void>((resolve) => { timer = setTimeout(resolve, ms); })]).finally(() => clearTimeout(timer));
}
