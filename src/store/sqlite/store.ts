import { closeSync, fsyncSync, openSync, rmSync, statfsSync, writeSync } from "node:fs";
import { dirname, join } from "node:path";
import Database from "better-sqlite3";
import { StoreError } from "../../errors.js";
import { MIGRATIONS } from "../migrations.js";
import { migrateOrClose, type Store } from "../store.js";
import type {
  CancelResult, CommitBatch, CommitResult, HealthCheck, LeaseConflict, NodeRecord, OpsSnapshot, PurgeQuery, PurgeResult,
  NodeHeartbeat, ReplayResult, SettingsChange, AuditEntry, AuditFilter, TaskRecord, TaskStatus, TaskWithSteps, KvEntry, KvChange, OwnershipEvent,
  ScheduleDefinition, ScheduleFire, ScheduleFireResult, ScheduleRecord,
} from "../types.js";
import { agentsParam, applyBatch, insertPlainTasks, insertTask, type Inserts } from "./commit.js";
import { toStepRecord, toTaskRecord, type StepRow, type TaskRow } from "../rows.js";
import { importColumns, STORE_ERRORS_COUNTER, type ExportOptions, type ImportOptions, type ImportResult, type RowPage } from "../tables.js";
import type { MembershipUpdate } from "../store.js";
import { prepareOps, type SqliteOps } from "./ops.js";
import { prepareStatements, type Statements } from "./statements.js";
import { prepareFlow } from "./flow.js";
import { exportSqliteFile } from "./export.js";
import { prepareSchedules, type SqliteSchedules } from "./schedules.js";

export interface SqliteStoreOptions {
  /** Path of the database file. */
  path: string;
  /** "full": synchronous=FULL (survives power loss); "normal": synchronous=NORMAL. */
  durability: "full" | "normal";
  /** How long a writer waits for another process's lock (default: 15000). */
  busyTimeoutMs?: number;
  /** Called with every SQL statement this connection runs (benchmarks count statements with it). */
  trace?: (sql: string) => void;
}


/** Size of the file the disk probe of `health()` writes and syncs. */
const DISK_PROBE_BYTES = 64 * 1024;

/** The embedded store: one SQLite file in WAL mode, shared by the processes of one root. */
export class SqliteStore implements Store {
  readonly location: string;
  readonly shared = false;
  readonly #db: Database.Database;
  #statements: Statements | null = null;
  #ops: SqliteOps | null = null;
  #schedules: SqliteSchedules | null = null;
  readonly #durability: "full" | "normal";
  #commitTx: ((batch: CommitBatch) => CommitResult) | null = null;
  #reclaimTx: ((nodeIds: string[], limit: number, now: number, byNode: string) => number) | null = null;
  #closed = false;
  readonly #path: string;
  /** Failed operations not yet added to the counters table (added by the next write that succeeds). */
  readonly #unrecordedErrors = new Map<string, number>();

  private constructor(db: Database.Database, path: string, durability: "full" | "normal") {
    this.#db = db;
    this.#durability = durability;
    this.#path = path;
    this.location = `sqlite:${path}`;
  }

  /** Opens the file, sets and reads back the PRAGMAs, and fails fast when one did not take. */
  static open(options: SqliteStoreOptions): SqliteStore {
    let db: Database.Database;
    try {
      const trace = options.trace;
      db = new Database(options.path, { timeout: options.busyTimeoutMs ?? 15_000, ...(trace ? { verbose: (sql: unknown) => trace(String(sql)) } : {}) });
    } catch (cause) {
      throw new StoreError(`cannot open SQLite store at ${options.path}: ${(cause as Error).message}`, { cause });
    }
    const wanted = { journal_mode: "wal", synchronous: options.durability === "full" ? 2 : 1, foreign_keys: 0 };
    try {
      setJournalMode(db, wanted.journal_mode, options.busyTimeoutMs ?? 15_000);
      db.pragma(`synchronous = ${wanted.synchronous}`);
      db.pragma(`foreign_keys = ${wanted.foreign_keys}`);
      const actual = {
        journal_mode: db.pragma("journal_mode", { simple: true }),
        synchronous: db.pragma("synchronous", { simple: true }),
        foreign_keys: db.pragma("foreign_keys", { simple: true }),
      };
      for (const key of Object.keys(wanted) as (keyof typeof wanted)[]) {
        if (actual[key] !== wanted[key]) {
          throw new StoreError(`SQLite PRAGMA ${key} is ${String(actual[key])} at ${options.path}, expected ${wanted[key]}; ` +
            `the file system may not support WAL (use a local disk)`);
        }
      }
    } catch (cause) {
      db.close();
      if (cause instanceof StoreError) throw cause;
      throw new StoreError(`cannot configure SQLite store at ${options.path}: ${(cause as Error).message}`, { cause });
    }
    return new SqliteStore(db, options.path, options.durability);
  }

  /** Opens and migrates a store file with full durability (snapshots, copies). */
  static async openMigrated(path: string): Promise<SqliteStore> {
    return migrateOrClose(SqliteStore.open({ path, durability: "full" }));
  }

  /** PRAGMAs as they are now, for health checks. */
  pragmas(): Record<string, unknown> {
    return {
      journal_mode: this.#db.pragma("journal_mode", { simple: true }),
      synchronous: this.#db.pragma("synchronous", { simple: true }),
      busy_timeout: this.#db.pragma("busy_timeout", { simple: true }),
    };
  }

  async migrate(): Promise<void> {
    const db = this.#db;
    this.#guard(() => {
      db.transaction(() => {
        db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (id INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at_ms INTEGER NOT NULL)`);
        const done = new Set((db.prepare(`SELECT id FROM schema_migrations`).all() as { id: number }[]).map((r) => r.id));
        for (const m of MIGRATIONS) {
          if (done.has(m.id)) continue;
          db.exec(m.sqlite);
          db.prepare(`INSERT INTO schema_migrations (id, name, applied_at_ms) VALUES (?, ?, ?)`).run(m.id, m.name, Date.now());
        }
      }).immediate();
    }, "migrate");
    this.#statements = prepareStatements(db);
    this.#ops = prepareOps(db);
    const statements = this.#statements;
    const ops = this.#ops;
    const flow = prepareFlow(db);
    this.#schedules = prepareSchedules(db, statements, flow);
    const inserts: Inserts = { one: db.transaction(insertTask), plain: db.transaction(insertPlainTasks) };
    const tx = db.transaction((batch: CommitBatch) => applyBatch(statements, flow, batch, inserts));
    this.#commitTx = (batch) => tx.immediate(batch);
    const reclaim = db.transaction((nodeIds: string[], limit: number, now: number, byNode: string) => {
      const n = ops.expireLeasesOf(nodeIds, limit);
      // Their leases now end first in expiry order, so this reclaim takes exactly them.
      if (n > 0) applyBatch(statements, flow, { ...IDLE_BATCH, nowMs: now, nodeId: byNode, reclaimExpiredLimit: n }, inserts);
      return n;
    });
    this.#reclaimTx = (...args) => reclaim.immediate(...args);
  }

  now(): number {
    return Date.now();
  }

  async commit(batch: CommitBatch): Promise<CommitResult> {
    const commitTx = this.#commitTx;
    if (!commitTx) throw new StoreError("store is not migrated (call migrate() first) or is closed");
    const result = this.#guard(() => {
      const idle = this.#idleResult(batch);
      return idle ?? commitTx(batch);
    }, "commit");
    if (this.#unrecordedErrors.size > 0) this.#recordErrors();
    return result;
  }

  /** Adds the failures counted since the last successful write to the counters (kept for later if this fails too). */
  #recordErrors(): void {
    const bump = this.#o().bumpCounter;
    try {
      this.#db.transaction(() => { for (const [name, n] of this.#unrecordedErrors) bump(name, n); })();
      this.#unrecordedErrors.clear();
    } catch { /* still failing: counted in memory, shown in snapshots */ }
  }

  /** Persisted counters plus this process's failures not yet written. */
  #withUnrecorded(counters: Record<string, number>): Record<string, number> {
    for (const [name, n] of this.#unrecordedErrors) counters[name] = (counters[name] ?? 0) + n;
    return counters;
  }

  /** For a batch that only claims and reclaims: an empty result from a read when there is nothing to do (no write lock taken). */
  #idleResult(batch: CommitBatch): CommitResult | null {
    if (batch.submissions.length + batch.renewals.length + batch.completions.length + batch.failures.length + batch.releases.length +
      (batch.kvWrites?.length ?? 0) + (batch.progress?.length ?? 0) > 0) return null;
    const p = this.#s().workProbe.get({ agents: agentsParam(batch.claim?.agents) }) as { ready: number; retry_at: number | null; expires_at: number | null };
    if (batch.claim && batch.claim.limit > 0 && p.ready === 1) return null;
    if (batch.releaseRetriesLimit > 0 && p.retry_at !== null && p.retry_at <= batch.nowMs) return null;
    if (batch.reclaimExpiredLimit > 0 && p.expires_at !== null && p.expires_at < batch.nowMs) return null;
    return {
      submitted: [], refused: [], outcomes: [], cancelledRunning: [], reclaimed: 0, released: 0, kvResults: [], claimed: [],
      claimBacklog: [false, false, false], finishedTasks: [], nextRetryAtMs: p.retry_at,
    };
  }

  async getTask(taskId: string): Promise<TaskWithSteps | null> {
    const s = this.#s();
    return this.#guard(() => this.#db.transaction(() => {
      const row = s.getTask.get(taskId) as TaskRow | undefined;
      if (!row) return null;
      const steps = (s.stepsOfTask.all(taskId) as StepRow[]).map(toStepRecord);
      const edges = (s.edgesOfTask.all(taskId) as { from_step: string; to_step: string }[]).map((e) => [e.from_step, e.to_step] as [string, string]);
      return { ...toTaskRecord(row), steps, edges };
    })(), "getTask");
  }

  async findTaskByIdempotencyKey(key: string): Promise<string | null> {
    const row = this.#guard(() => this.#s().taskByKey.get(key) as { task_id: string } | undefined, "findTaskByIdempotencyKey");
    return row ? row.task_id : null;
  }

  async listTasks(query: { status?: TaskStatus; limit: number; offset: number }): Promise<{ tasks: TaskRecord[]; total: number }> {
    const s = this.#s();
    return this.#guard(() => this.#db.transaction(() => {
      const rows = (query.status
        ? s.listTasksByStatus.all(query.status, query.limit, query.offset)
        : s.listTasks.all(query.limit, query.offset)) as TaskRow[];
      const total = (query.status ? s.countTasksByStatus.get(query.status) : s.countTasks.get()) as { n: number };
      return { tasks: rows.map(toTaskRecord), total: total.n };
    })(), "listTasks");
  }

  async taskStatuses(taskIds: readonly string[]): Promise<Map<string, TaskStatus>> {
    const s = this.#s();
    return this.#guard(() => {
      const out = new Map<string, TaskStatus>();
      for (const id of taskIds) {
        const row = s.taskStatus.get(id) as { status: TaskStatus } | undefined;
        if (row) out.set(id, row.status);
      }
      return out;
    }, "taskStatuses");
  }

  async listLeaseConflicts(query: { sinceMs: number; limit: number }): Promise<LeaseConflict[]> {
    const rows = this.#guard(() => this.#s().listConflicts.all(query.sinceMs, query.limit), "listLeaseConflicts") as {
      task_id: string; step_id: string; expected_epoch: number; actual_epoch: number | null; node_id: string; operation: string; at_ms: number;
    }[];
    return rows.map((r) => ({
      taskId: r.task_id, stepId: r.step_id, expectedLeaseEpoch: r.expected_epoch, actualLeaseEpoch: r.actual_epoch,
      nodeId: r.node_id, operation: r.operation, atMs: r.at_ms,
    }));
  }

  async counters(): Promise<Record<string, number>> {
    const rows = this.#guard(() => this.#s().counters.all(), "counters") as { name: string; value: number }[];
    return this.#withUnrecorded(Object.fromEntries(rows.map((r) => [r.name, r.value])));
  }

  async cancelTask(taskId: string, mode: "hard" | "soft", nowMs: number, reason?: string): Promise<CancelResult | null> {
    return this.#guard(() => this.#o().cancelTask(taskId, mode, nowMs, reason ?? null), "cancelTask");
  }

  async replayTask(taskId: string, nowMs: number): Promise<ReplayResult | null> {
    return this.#guard(() => this.#o().replayTask(taskId, nowMs), "replayTask");
  }

  async purge(query: PurgeQuery): Promise<PurgeResult> {
    return this.#guard(() => this.#o().purge(query), "purge");
  }

  async opsSnapshot(nowMs: number): Promise<OpsSnapshot> {
    const snapshot = this.#guard(() => this.#o().snapshot(nowMs), "opsSnapshot");
    this.#withUnrecorded(snapshot.counters);
    return snapshot;
  }

  async heartbeatNode(node: NodeHeartbeat, nowMs: number): Promise<void> {
    this.#guard(() => this.#o().heartbeatNode(node, nowMs), "heartbeatNode");
  }

  async stopNode(node: { nodeId: string; pid: number }, nowMs: number): Promise<void> {
    this.#guard(() => this.#o().stopNode(node, nowMs), "stopNode");
  }

  async listNodes(): Promise<NodeRecord[]> {
    return this.#guard(() => this.#o().nodes(), "listNodes");
  }

  async kvGet(namespace: string, key: string): Promise<KvEntry | null> {
    return this.#guard(() => this.#o().kvGet(namespace, key), "kvGet");
  }

  async kvList(namespace: string, query: { prefix?: string; limit: number }): Promise<KvEntry[]> {
    return this.#guard(() => this.#o().kvList(namespace, query.prefix ?? "", query.limit), "kvList");
  }

  async kvChanges(namespace: string, afterVersion: number, limit: number): Promise<KvChange[]> {
    return this.#guard(() => this.#o().kvChanges(namespace, afterVersion, limit), "kvChanges");
  }

  async setMemberships(updates: MembershipUpdate[]): Promise<number> {
    return this.#guard(() => this.#o().setMemberships(updates), "setMemberships");
  }

  async reclaimStepsOfNodes(nodeIds: string[], limit: number, nowMs: number, byNode: string): Promise<number> {
    const tx = this.#reclaimTx;
    if (!tx) throw new StoreError("store is not migrated (call migrate() first) or is closed");
    return this.#guard(() => tx(nodeIds, limit, nowMs, byNode), "reclaimStepsOfNodes");
  }

  async pruneNodes(olderThanMs: number, limit: number): Promise<number> {
    return this.#guard(() => this.#o().pruneNodes(olderThanMs, limit), "pruneNodes");
  }

  async ownershipEvents(sinceMs: number, limit: number): Promise<OwnershipEvent[]> {
    return this.#guard(() => this.#o().ownershipEvents(sinceMs, limit), "ownershipEvents");
  }

  async clusterEpoch(): Promise<number> {
    return this.#guard(() => this.#o().clusterEpoch(), "clusterEpoch");
  }

  async bumpClusterEpoch(nowMs: number): Promise<{ clusterEpoch: number; fencedSteps: { taskId: string; stepId: string }[] }> {
    return this.#guard(() => this.#o().bumpClusterEpoch(nowMs), "bumpClusterEpoch");
  }

  async dueDeadlines(nowMs: number, limit: number): Promise<string[]> {
    return this.#guard(() => this.#sch().dueDeadlines(nowMs, limit), "dueDeadlines");
  }

  async putSchedule(def: ScheduleDefinition, nowMs: number): Promise<{ schedule: ScheduleRecord; replaced: boolean }> {
    return this.#guard(() => this.#sch().put(def, nowMs), "putSchedule");
  }

  async getSchedule(name: string): Promise<ScheduleRecord | null> {
    return this.#guard(() => this.#sch().get(name), "getSchedule");
  }

  async listSchedules(): Promise<ScheduleRecord[]> {
    return this.#guard(() => this.#sch().list(), "listSchedules");
  }

  async setSchedulePaused(name: string, paused: boolean, next: { nextSlotMs: number | null; nextAtMs: number | null }, nowMs: number): Promise<ScheduleRecord | null> {
    return this.#guard(() => this.#sch().setPaused(name, paused, next, nowMs), "setSchedulePaused");
  }

  async removeSchedule(name: string): Promise<boolean> {
    return this.#guard(() => this.#sch().remove(name), "removeSchedule");
  }

  async dueSchedules(nowMs: number, limit: number): Promise<ScheduleRecord[]> {
    return this.#guard(() => this.#sch().due(nowMs, limit), "dueSchedules");
  }

  async fireSchedule(fire: ScheduleFire): Promise<ScheduleFireResult> {
    return this.#guard(() => this.#sch().fire(fire), "fireSchedule");
  }

  async exportRows(sink: (page: RowPage) => Promise<void> | void, options?: ExportOptions): Promise<Record<string, number>> {
    this.#o();
    return exportSqliteFile(this.#path, sink, options);
  }

  async removeOrphanRows(): Promise<number> {
    return this.#guard(() => this.#o().removeOrphanRows(), "removeOrphanRows");
  }

  async importRows(page: RowPage, options: ImportOptions = {}): Promise<ImportResult> {
    this.#o();
    const plan = importColumns(page, options);
    if (!plan) return { inserted: 0, rows: [] };
    const { spec, columns, returning } = plan;
    const insert = this.#db.prepare(`INSERT INTO ${spec.name} (${columns.join(", ")}) VALUES (${columns.map(() => "?").join(", ")}) ON CONFLICT DO NOTHING` +
      (returning.length > 0 ? ` RETURNING ${returning.join(", ")}` : ""));
    return this.#guard(() => this.#db.transaction(() => {
      const out: ImportResult = { inserted: 0, rows: [] };
      for (const row of page.rows) {
        const values = columns.map((c) => {
          const v = row[c];
          return typeof v === "boolean" ? (v ? 1 : 0) : v ?? null;
        });
        if (returning.length === 0) {
          out.inserted += insert.run(values).changes;
          continue;
        }
        const back = insert.get(values) as Record<string, unknown> | undefined;
        if (back) { out.inserted++; out.rows.push(back); }
      }
      return out;
    }).immediate(), "importRows");
  }

  async meta(name: string): Promise<string | null> {
    return this.#guard(() => this.#o().meta(name), "meta");
  }

  async setMeta(name: string, value: string): Promise<void> {
    this.#guard(() => this.#o().setMeta(name, value), "setMeta");
  }

  async addSettingsChange(change: SettingsChange): Promise<void> {
    this.#guard(() => this.#o().addSettingsChange(change), "addSettingsChange");
  }

  async settingsHistory(limit: number): Promise<SettingsChange[]> {
    return this.#guard(() => this.#o().settingsHistory(limit), "settingsHistory");
  }

  async appendAudit(entries: AuditEntry[]): Promise<void> {
    if (entries.length > 0) this.#guard(() => this.#o().appendAudit(entries), "appendAudit");
  }

  async auditEntries(filter: AuditFilter): Promise<AuditEntry[]> {
    return this.#guard(() => this.#o().auditEntries(filter), "auditEntries");
  }

  async health(): Promise<HealthCheck[]> {
    const checks: HealthCheck[] = [];
    const check = (name: string, fn: () => string) => {
      try {
        checks.push({ name, ok: true, detail: fn() });
      } catch (error) {
        checks.push({ name, ok: false, detail: (error as Error).message });
      }
    };
    check("store-open", () => {
      if (this.#closed || !this.#statements) throw new Error("store is closed or not migrated");
      return this.location;
    });
    check("store-integrity", () => {
      const rows = this.#guard(() => this.#db.pragma("quick_check") as { quick_check: string }[], "health");
      if (rows.length !== 1 || rows[0]!.quick_check !== "ok") {
        throw new Error(`PRAGMA quick_check found damage: ${rows.slice(0, 3).map((r) => r.quick_check).join("; ")}`);
      }
      return "PRAGMA quick_check: ok";
    });
    check("store-writable", () => {
      this.#guard(() => this.#db.transaction(() => this.#o().bumpCounter("health_check_total", 1)).immediate(), "health");
      return "a write transaction committed";
    });
    check("store-disk", () => {
      const dir = dirname(this.#path);
      const probe = join(dir, `.relaymesh-disk-probe-${process.pid}`);
      try {
        const fd = openSync(probe, "w");
        try {
          writeSync(fd, Buffer.alloc(DISK_PROBE_BYTES));
          fsyncSync(fd);
        } finally {
          closeSync(fd);
        }
      } catch (error) {
        this.#count("health", (error as NodeJS.ErrnoException).code);
        throw new Error(`cannot write and sync ${DISK_PROBE_BYTES} bytes beside the store: ${(error as Error).message}`);
      } finally {
        rmSync(probe, { force: true });
      }
      const fs = statfsSync(dir);
      return `${DISK_PROBE_BYTES} bytes written and synced in ${dir}; ${fs.bavail * fs.bsize} bytes free`;
    });
    check("pragmas", () => {
      const p = this.pragmas();
      const want = { journal_mode: "wal", synchronous: this.#durability === "full" ? 2 : 1 };
      if (p.journal_mode !== want.journal_mode || p.synchronous !== want.synchronous) {
        throw new Error(`journal_mode=${String(p.journal_mode)} synchronous=${String(p.synchronous)}, expected ${want.journal_mode} and ${want.synchronous}`);
      }
      return `journal_mode=${String(p.journal_mode)} synchronous=${String(p.synchronous)} busy_timeout=${String(p.busy_timeout)}`;
    });
    return checks;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#ops = null;
    this.#schedules = null;
    this.#commitTx = null;
    this.#reclaimTx = null;
    this.#statements = null;
    this.#db.close();
  }

  #s(): Statements {
    if (!this.#statements) throw new StoreError("store is not migrated (call migrate() first) or is closed");
    return this.#statements;
  }

  #o(): SqliteOps {
    if (!this.#ops) throw new StoreError("store is not migrated (call migrate() first) or is closed");
    return this.#ops;
  }

  #count(operation: string, code: string | undefined): void {
    const name = `${STORE_ERRORS_COUNTER}:${operation}:${code ?? "unknown"}`;
    this.#unrecordedErrors.set(name, (this.#unrecordedErrors.get(name) ?? 0) + 1);
  }

  #sch(): SqliteSchedules {
    if (!this.#schedules) throw new StoreError("store is not migrated (call migrate() first) or is closed");
    return this.#schedules;
  }

  #guard<T>(fn: () => T, operation: string): T {
    try {
      return fn();
    } catch (cause) {
      if (cause instanceof StoreError) throw cause;
      const code = (cause as { code?: string }).code;
      this.#count(operation, code);
      throw new StoreError(`SQLite ${operation} failed${code ? ` (${code})` : ""}: ${(cause as Error).message}`, { cause });
    }
  }
}

/** A batch that writes nothing (the base of store-internal batches). */
const IDLE_BATCH: CommitBatch = {
  nowMs: 0, nodeId: "", leaseTimeoutMs: 0, submissions: [], completions: [], failures: [], renewals: [], releases: [],
  releaseRetriesLimit: 0, reclaimExpiredLimit: 0, claim: null,
};

/**
 * Sets the journal mode. Switching a new file to WAL takes an exclusive lock, and SQLite answers
 * SQLITE_BUSY at once, without its busy handler, when another process opening the same new root
 * holds it: tried again (the open is synchronous, so the wait blocks) until `timeoutMs`.
 */
function setJournalMode(db: Database.Database, mode: string, timeoutMs: number): void {
  const deadline = Date.now() + timeoutMs;
  for (let waitMs = 5; ; waitMs = Math.min(100, waitMs * 2)) {
    try {
      db.pragma(`journal_mode = ${mode}`);
      return;
    } catch (error) {
      if ((error as { code?: string }).code !== "SQLITE_BUSY" || Date.now() + waitMs > deadline) throw error;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, waitMs);
    }
  }
}
