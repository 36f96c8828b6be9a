import { Worker } from "node:worker_threads";
import { ErrorCode, StoreError, errorFromWire } from "../../errors.js";
import type { MembershipUpdate, Store } from "../store.js";
import type { ExportOptions, ImportOptions, ImportResult, RowPage } from "../tables.js";
import type {
  CancelResult, CommitBatch, NodeHeartbeat, SettingsChange, AuditEntry, AuditFilter, CommitResult, HealthCheck, KvChange, KvEntry, LeaseConflict, NodeRecord, OpsSnapshot, OwnershipEvent,
  PurgeQuery, PurgeResult, ReplayResult, ScheduleDefinition, ScheduleFire, ScheduleFireResult, ScheduleRecord, TaskRecord, TaskStatus,
  TaskWithSteps,
} from "../types.js";
import { exportSqliteFile } from "./export.js";
import type { SqliteStoreOptions } from "./store.js";
import type { StoreMethod, StoreReply, StoreRequest, StoreThreadData } from "./thread-protocol.js";

const WORKER_FILE = new URL("./store.worker.js", import.meta.url);

/**
 * The SQLite store run on a thread of its own: the same semantics as SqliteStore (every call is
 * one transaction, durable before its promise resolves), but the statements and fsyncs happen
 * off the main thread, so the event loop keeps receiving results and accepting submissions while
 * a commit is written. Calls are applied in the order they are made; several may be in flight.
 * The thread keeps the process alive until close().
 */
export class SqliteThreadStore implements Store {
  readonly location: string;
  readonly shared = false;
  readonly pipelining = "ordered";
  readonly #worker: Worker;
  readonly #pending = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();
  #seq = 0;
  #closing: Promise<void> | null = null;
  /** Set once the thread is gone: every later call fails with it. */
  #gone: Error | null = null;

  readonly #path: string;

  private constructor(worker: Worker, path: string) {
    this.#worker = worker;
    this.#path = path;
    this.location = `sqlite:${path}`;
    worker.on("message", (reply: StoreReply) => {
      if (reply.type !== "reply") return;
      const call = this.#pending.get(reply.id);
      if (!call) return;
      this.#pending.delete(reply.id);
      if (reply.ok) call.resolve(reply.value);
      else call.reject(errorFromWire(reply.error, ErrorCode.STORE));
    });
    const fail = (error: Error) => {
      this.#gone ??= error;
      for (const call of this.#pending.values()) call.reject(error);
      this.#pending.clear();
    };
    worker.on("error", (error) => fail(new StoreError(`the SQLite store thread of ${this.location} failed: ${error.message}`, { cause: error })));
    worker.on("exit", (code) => fail(new StoreError(`the SQLite store thread of ${this.location} exited (code ${code})`)));
  }

  /** Starts the thread and opens the file there (PRAGMAs set and read back, as SqliteStore.open). */
  static async open(options: SqliteStoreOptions): Promise<SqliteThreadStore> {
    const data: StoreThreadData = { options };
    const worker = new Worker(WORKER_FILE, { workerData: data });
    const first = await new Promise<StoreReply>((resolve, reject) => {
      const onExit = (code: number) => reject(new StoreError(`the SQLite store thread for ${options.path} exited (code ${code}) before opening it`));
      worker.once("error", reject);
      worker.once("exit", onExit);
      worker.once("message", (reply: StoreReply) => { worker.off("error", reject); worker.off("exit", onExit); resolve(reply); });
    });
    if (first.type === "open-failed") {
      await worker.terminate();
      throw errorFromWire(first.error, ErrorCode.STORE);
    }
    return new SqliteThreadStore(worker, options.path);
  }

  #call<T>(method: StoreMethod, ...args: unknown[]): Promise<T> {
    if (this.#gone) return Promise.reject(this.#gone);
    const id = ++this.#seq;
    return new Promise<T>((resolve, reject) => {
      this.#pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      const request: StoreRequest = { type: "call", id, method, args };
      this.#worker.postMessage(request);
    });
  }

  now(): number {
    return Date.now();
  }

  migrate(): Promise<void> { return this.#call("migrate"); }
  commit(batch: CommitBatch): Promise<CommitResult> { return this.#call("commit", batch); }
  getTask(taskId: string): Promise<TaskWithSteps | null> { return this.#call("getTask", taskId); }
  findTaskByIdempotencyKey(key: string): Promise<string | null> { return this.#call("findTaskByIdempotencyKey", key); }
  listTasks(query: { status?: TaskStatus; limit: number; offset: number }): Promise<{ tasks: TaskRecord[]; total: number }> { return this.#call("listTasks", query); }
  taskStatuses(taskIds: readonly string[]): Promise<Map<string, TaskStatus>> { return this.#call("taskStatuses", taskIds); }
  listLeaseConflicts(query: { sinceMs: number; limit: number }): Promise<LeaseConflict[]> { return this.#call("listLeaseConflicts", query); }
  counters(): Promise<Record<string, number>> { return this.#call("counters"); }
  cancelTask(taskId: string, mode: "hard" | "soft", nowMs: number, reason?: string): Promise<CancelResult | null> {
    return this.#call("cancelTask", taskId, mode, nowMs, reason);
  }
  replayTask(taskId: string, nowMs: number): Promise<ReplayResult | null> { return this.#call("replayTask", taskId, nowMs); }
  purge(query: PurgeQuery): Promise<PurgeResult> { return this.#call("purge", query); }
  opsSnapshot(nowMs: number): Promise<OpsSnapshot> { return this.#call("opsSnapshot", nowMs); }
  heartbeatNode(node: NodeHeartbeat, nowMs: number): Promise<void> { return this.#call("heartbeatNode", node, nowMs); }
  stopNode(node: { nodeId: string; pid: number }, nowMs: number): Promise<void> { return this.#call("stopNode", node, nowMs); }
  listNodes(): Promise<NodeRecord[]> { return this.#call("listNodes"); }
  kvGet(namespace: string, key: string): Promise<KvEntry | null> { return this.#call("kvGet", namespace, key); }
  kvList(namespace: string, query: { prefix?: string; limit: number }): Promise<KvEntry[]> { return this.#call("kvList", namespace, query); }
  kvChanges(namespace: string, afterVersion: number, limit: number): Promise<KvChange[]> { return this.#call("kvChanges", namespace, afterVersion, limit); }
  setMemberships(updates: MembershipUpdate[]): Promise<number> { return this.#call("setMemberships", updates); }
  reclaimStepsOfNodes(nodeIds: string[], limit: number, nowMs: number, byNode: string): Promise<number> {
    return this.#call("reclaimStepsOfNodes", nodeIds, limit, nowMs, byNode);
  }
  pruneNodes(olderThanMs: number, limit: number): Promise<number> { return this.#call("pruneNodes", olderThanMs, limit); }
  ownershipEvents(sinceMs: number, limit: number): Promise<OwnershipEvent[]> { return this.#call("ownershipEvents", sinceMs, limit); }
  clusterEpoch(): Promise<number> { return this.#call("clusterEpoch"); }
  bumpClusterEpoch(nowMs: number): Promise<{ clusterEpoch: number; fencedSteps: { taskId: string; stepId: string }[] }> { return this.#call("bumpClusterEpoch", nowMs); }
  dueDeadlines(nowMs: number, limit: number): Promise<string[]> { return this.#call("dueDeadlines", nowMs, limit); }
  putSchedule(def: ScheduleDefinition, nowMs: number): Promise<{ schedule: ScheduleRecord; replaced: boolean }> { return this.#call("putSchedule", def, nowMs); }
  getSchedule(name: string): Promise<ScheduleRecord | null> { return this.#call("getSchedule", name); }
  listSchedules(): Promise<ScheduleRecord[]> { return this.#call("listSchedules"); }
  setSchedulePaused(name: string, paused: boolean, next: { nextSlotMs: number | null; nextAtMs: number | null }, nowMs: number): Promise<ScheduleRecord | null> {
    return this.#call("setSchedulePaused", name, paused, next, nowMs);
  }
  removeSchedule(name: string): Promise<boolean> { return this.#call("removeSchedule", name); }
  dueSchedules(nowMs: number, limit: number): Promise<ScheduleRecord[]> { return this.#call("dueSchedules", nowMs, limit); }
  fireSchedule(fire: ScheduleFire): Promise<ScheduleFireResult> { return this.#call("fireSchedule", fire); }
  importRows(page: RowPage, options?: ImportOptions): Promise<ImportResult> { return this.#call("importRows", page, options); }
  meta(name: string): Promise<string | null> { return this.#call("meta", name); }
  setMeta(name: string, value: string): Promise<void> { return this.#call("setMeta", name, value); }
  addSettingsChange(change: SettingsChange): Promise<void> { return this.#call("addSettingsChange", change); }
  settingsHistory(limit: number): Promise<SettingsChange[]> { return this.#call("settingsHistory", limit); }
  appendAudit(entries: AuditEntry[]): Promise<void> { return this.#call("appendAudit", entries); }
  auditEntries(filter: AuditFilter): Promise<AuditEntry[]> { return this.#call("auditEntries", filter); }
  health(): Promise<HealthCheck[]> { return this.#call("health"); }

  /** Read here, on a read-only connection of its own (see exportSqliteFile): the thread keeps writing. */
  exportRows(sink: (page: RowPage) => Promise<void> | void, options?: ExportOptions): Promise<Record<string, number>> {
    if (this.#gone) return Promise.reject(this.#gone);
    return exportSqliteFile(this.#path, sink, options);
  }

  removeOrphanRows(): Promise<number> { return this.#call("removeOrphanRows"); }

  /** Closes the connection (after the calls already made), then ends the thread. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      if (!this.#gone) await this.#call("close");
      this.#gone ??= new StoreError(`the SQLite store ${this.location} is closed`);
      await this.#worker.terminate();
    })();
    return this.#closing;
  }
}
