import type {
  CancelResult, CommitBatch, CommitResult, HealthCheck, LeaseConflict, NodeRecord, OpsSnapshot, PurgeQuery, PurgeResult,
  ReplayResult, TaskRecord, TaskStatus, TaskWithSteps, KvEntry, KvChange, OwnershipEvent, SettingsChange, NodeHeartbeat,
  ScheduleDefinition, ScheduleFire, ScheduleFireResult, ScheduleRecord, AuditEntry, AuditFilter,
} from "./types.js";
import type { ExportOptions, ImportOptions, ImportResult, RowPage } from "./tables.js";

export * from "./types.js";
export type { ImportOptions, ImportResult, RowPage } from "./tables.js";

export interface MembershipUpdate {
  nodeId: string;
  /** The standing the decision was based on. */
  from: { status: "ALIVE" | "SUSPECT" | "DEAD"; sinceMs: number };
  status: "ALIVE" | "SUSPECT" | "DEAD";
  sinceMs: number;
}

/**
 * The durable state of RelayMesh, as semantic operations. Two implementations: SQLite
 * (embedded, one folder, several processes) and PostgreSQL (many machines). No caller ever
 * sees SQL, a connection or a transaction.
 *
 * Every write method is one transaction: it applies entirely or not at all, and it has
 * committed durably (per the configured durability) before its promise resolves.
 */
export interface Store {
  /** Human-readable location ("sqlite:/path/relaymesh.db", "postgres://user@host/db?schema=s"): never a password. */
  readonly location: string;

  /**
   * True when nodes of other machines may share this store (PostgreSQL): settings that must
   * agree are then kept in it (`meta("cluster-settings")`), and audit records are written to it.
   */
  readonly shared: boolean;

  /**
   * How commits made while others are in flight are applied. "ordered": in the order made, off
   * the caller's thread (the SQLite store thread), so one sent behind another starts the moment
   * the first ends and sees what it wrote. "concurrent": at once, each on a connection of its own
   * (PostgreSQL). Absent: during the call itself (a store on the calling thread).
   */
  readonly pipelining?: "ordered" | "concurrent";

  /**
   * The store's clock in epoch ms: lease expiry, heartbeat ages and every `nowMs` the engine
   * passes come from it, so clock skew between machines cannot expire a healthy lease (SQLite:
   * the local clock; PostgreSQL: the server's clock, tracked as an offset from the local one).
   */
  now(): number;

  /**
   * Subscribes to hints that new work may be runnable (submitted or released by another
   * process). Optional and lossy: polling stays the correctness path. Returns the unsubscribe.
   */
  onWake?(listener: () => void): () => void;

  /**
   * Subscribes to errors that happen outside any call (a broken idle connection, a lost
   * LISTEN connection being re-established). Optional. Returns the unsubscribe.
   */
  onError?(listener: (error: Error) => void): () => void;

  /** Applies the numbered migrations not yet applied. Idempotent; safe from concurrent processes. */
  migrate(): Promise<void>;

  /**
   * The supervisor's group commit: submissions, completions, failures, lease renewals, retry
   * release, expired-lease reclaim and a claim, all in one transaction (see `CommitBatch` for
   * the order). Completions, failures and renewals are fenced: each applies only if the step
   * is still RUNNING under the same owner and `leaseEpoch`; otherwise it changes nothing and
   * is recorded as a lease conflict and returned in `refused`. A success resolves the DAG in
   * the same transaction: dependents whose dependencies all succeeded become READY, and may be
   * claimed by the same batch. Idempotent submissions return the existing task. A batch never
   * fails for one item (see `CommitBatch`); a batch that writes nothing and finds no work takes
   * no write lock and writes no row (an idle worker's poll).
   */
  commit(batch: CommitBatch): Promise<CommitResult>;

  /** One task with its steps and edges, or null. */
  getTask(taskId: string): Promise<TaskWithSteps | null>;

  /** A task's id for an idempotency key, or null. */
  findTaskByIdempotencyKey(key: string): Promise<string | null>;

  /** Tasks newest first, optionally of one status, with the total matching. */
  listTasks(query: { status?: TaskStatus; limit: number; offset: number }): Promise<{ tasks: TaskRecord[]; total: number }>;

  /** Status of several tasks at once (missing ids are left out). */
  taskStatuses(taskIds: readonly string[]): Promise<Map<string, TaskStatus>>;

  /** Recorded lease conflicts at or after `sinceMs`, newest first. */
  listLeaseConflicts(query: { sinceMs: number; limit: number }): Promise<LeaseConflict[]>;

  /** Monotonic counters kept in the store (so other processes can read them). */
  counters(): Promise<Record<string, number>>;

  /**
   * Cancels a task. "hard": every open step (RUNNING ones included, their epoch bumped so late
   * results are refused) becomes CANCELLED and so does the task. "soft": only steps that have
   * not started; RUNNING ones finish and the task ends CANCELLED after them. A finished task is
   * left as it is. Null for an unknown id. `reason` is kept on the task (the first one given wins).
   */
  cancelTask(taskId: string, mode: "hard" | "soft", nowMs: number, reason?: string): Promise<CancelResult | null>;

  /**
   * Re-runs a DEAD_LETTER task from its dead steps: they become READY with a fresh attempt
   * count (a new replay round); SKIPPED and CANCELLED steps wait for their dependencies again;
   * SUCCESS steps keep their outputs. Any other status changes nothing. Null for an unknown id.
   */
  replayTask(taskId: string, nowMs: number): Promise<ReplayResult | null>;

  /** Deletes finished tasks and dead letters past retention, and forgets old idempotency keys. */
  purge(query: PurgeQuery): Promise<PurgeResult>;

  /** Counts, queue lag and step durations for stats and metrics, in one consistent read. */
  opsSnapshot(nowMs: number): Promise<OpsSnapshot>;

  /** Records that a worker node is alive (creating its row on first call), with the agents it serves and its load. */
  heartbeatNode(node: NodeHeartbeat, nowMs: number): Promise<void>;

  /** Marks a node stopped after a graceful exit (only the row of that process). */
  stopNode(node: { nodeId: string; pid: number }, nowMs: number): Promise<void>;

  /** Every known node. */
  listNodes(): Promise<NodeRecord[]>;

  /** One checkpoint value, or null when the key is absent. */
  kvGet(namespace: string, key: string): Promise<KvEntry | null>;

  /** Keys of a namespace starting with `prefix`, in key order, at most `limit`. */
  kvList(namespace: string, query: { prefix?: string; limit: number }): Promise<KvEntry[]>;

  /** Writes and deletions in a namespace after `afterVersion`, oldest first (for watchers). */
  kvChanges(namespace: string, afterVersion: number, limit: number): Promise<KvChange[]>;

  /**
   * Records nodes' membership standings (evaluated by a maintenance tick). Each update applies
   * only if the node's standing is still `from` (the one the tick read), so two nodes' ticks
   * never overwrite each other's newer verdict. Returns how many applied.
   */
  setMemberships(updates: MembershipUpdate[]): Promise<number>;

  /**
   * Takes back up to `limit` RUNNING steps owned by these (dead) nodes: each becomes READY
   * again with a new lease epoch (or DEAD_LETTER when it has no attempt left), so its owner's
   * late writes are refused; each is recorded as an ownership event by `byNode`. Returns how many.
   */
  reclaimStepsOfNodes(nodeIds: string[], limit: number, nowMs: number, byNode: string): Promise<number>;

  /** Deletes up to `limit` DEAD node rows whose last heartbeat is older than `olderThanMs`. */
  pruneNodes(olderThanMs: number, limit: number): Promise<number>;

  /** Reclaims and refused writes at or after `sinceMs`, newest first. */
  ownershipEvents(sinceMs: number, limit: number): Promise<OwnershipEvent[]>;

  /** The cluster-wide fencing epoch (0 until first bumped). */
  clusterEpoch(): Promise<number>;

  /**
   * Bumps the cluster epoch and fences everything in flight: every RUNNING step gets a new lease
   * epoch and is READY again (the interrupted attempt is not counted), so every owner's next
   * write is refused.
   */
  bumpClusterEpoch(nowMs: number): Promise<{ clusterEpoch: number; fencedSteps: { taskId: string; stepId: string }[] }>;

  /** Open tasks whose deadline is at or before `nowMs`, earliest first, at most `limit` (one indexed read). */
  dueDeadlines(nowMs: number, limit: number): Promise<string[]>;

  /** Adds a schedule, or replaces the definition of the one with that name (its history and counts stay). */
  putSchedule(def: ScheduleDefinition, nowMs: number): Promise<{ schedule: ScheduleRecord; replaced: boolean }>;

  getSchedule(name: string): Promise<ScheduleRecord | null>;

  /** Every schedule, by name. */
  listSchedules(): Promise<ScheduleRecord[]>;

  /** Pauses or resumes a schedule, with the next slot to wait for; null for an unknown name. */
  setSchedulePaused(name: string, paused: boolean, next: { nextSlotMs: number | null; nextAtMs: number | null }, nowMs: number): Promise<ScheduleRecord | null>;

  /** Deletes a schedule and its slot records; false for an unknown name. Tasks it fired stay. */
  removeSchedule(name: string): Promise<boolean>;

  /** Unpaused schedules due at `nowMs` (next_at_ms <= now), earliest first, at most `limit`: one indexed read. */
  dueSchedules(nowMs: number, limit: number): Promise<ScheduleRecord[]>;

  /**
   * Applies one tick's decision for a schedule in one transaction: the compare-and-set on its
   * next slot, one row per (schedule, slot) — a slot already recorded inserts nothing — and the
   * tasks of new fired slots. Exactly one of several nodes handling the same slot applies it.
   */
  fireSchedule(fire: ScheduleFire): Promise<ScheduleFireResult>;


  /**
   * A logical export of the whole store: every row of every table (EXPORT_TABLES), in pages, from
   * one consistent snapshot, while the store stays in use. Returns the row count per table.
   */
  exportRows(sink: (page: RowPage) => Promise<void> | void, options?: ExportOptions): Promise<Record<string, number>>;

  /**
   * Deletes the steps, step inputs and outputs, and edges of tasks the store does not hold: what
   * an import cut short leaves (`migrate` writes a task's row after all of its rows, so a task
   * row means a complete task). History (lease conflicts, ownership events) is kept: it outlives
   * purged tasks. Returns how many rows were deleted.
   */
  removeOrphanRows(): Promise<number>;

  /**
   * Loads a page of rows written by `exportRows` (of either dialect) as they are, ids included
   * unless `freshIds`. Rows already present (any unique key) are left as they are and not counted.
   */
  importRows(page: RowPage, options?: ImportOptions): Promise<ImportResult>;

  /**
   * A value of the store's own metadata, or null. `origin` (set when the store is created) is
   * the store's identity; `migrate` records `imported-from:<origin>` for each store copied in.
   */
  meta(name: string): Promise<string | null>;

  /** Sets a metadata value (see `meta`). */
  setMeta(name: string, value: string): Promise<void>;

  /** Records a settings change (field names only, never values). An entry id already recorded is left as it is. */
  addSettingsChange(change: SettingsChange): Promise<void>;

  /** Settings changes, newest first. */
  settingsHistory(limit: number): Promise<SettingsChange[]>;

  /**
   * Appends audit entries, all in one statement (the engine buffers them and writes a batch every
   * ~100 ms). On PostgreSQL this is the cluster-wide audit; on SQLite the root's JSONL file stays
   * the audit log and the table only holds what a snapshot of a PostgreSQL store brought in.
   */
  appendAudit(entries: AuditEntry[]): Promise<void>;

  /** Audit entries matching the filter, newest first (ties: the later written first), at most `limit`. */
  auditEntries(filter: AuditFilter): Promise<AuditEntry[]>;

  /** The store's own health checks: reachable, writable, configured as asked. */
  health(): Promise<HealthCheck[]>;

  /** Closes the store. Idempotent. */
  close(): Promise<void>;
}

/** Migrates a store just opened; closes it again when that fails. */
export async function migrateOrClose<S extends Store>(store: S): Promise<S> {
  try {
    await store.migrate();
  } catch (error) {
    await store.close();
    throw error;
  }
  return store;
}
