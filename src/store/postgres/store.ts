import pg from "pg";
import { StoreError } from "../../errors.js";
import { MIGRATIONS } from "../migrations.js";
import type { MembershipUpdate, Store } from "../store.js";
import { importColumns, exportTables, STORE_ERRORS_COUNTER, toSettingsChange, type ExportOptions, type ImportOptions, type ImportResult, type RowPage, type SettingsRow } from "../tables.js";
import type {
  CancelResult, CommitBatch, NodeHeartbeat, CommitResult, HealthCheck, KvChange, KvEntry, LeaseConflict, NodeRecord, OpsSnapshot, OwnershipEvent,
  PurgeQuery, PurgeResult, ReplayResult, SettingsChange, TaskRecord, TaskStatus, TaskWithSteps,
  ScheduleDefinition, ScheduleFire, ScheduleFireResult, ScheduleRecord, AuditEntry, AuditFilter,
} from "../types.js";
import { PgBatch, emptyResult, isClaimAlone, isLightCompletion, isOneStatement, isReadOnlyBatch, probe, snapshotHints, unknownHints } from "./commit.js";
import { RETRYABLE_SQLSTATES, isConnectionError, type Queryable } from "./db.js";
import { WakeChannel } from "./notify.js";
import * as ops from "./ops.js";
import * as sch from "./schedules.js";
import { parsePgUrl, type PgTarget } from "./url.js";

export interface PostgresStoreOptions {
  /** `postgres://user[:password]@host[:port]/database[?schema=NAME]`. */
  url: string;
  /** Connections of the pool (the engine uses concurrency + 2); LISTEN takes one more of its own. */
  poolSize: number;
  /** Session `lock_timeout` (default 5000). */
  lockTimeoutMs?: number;
  /** Session `statement_timeout` (default 30000). */
  statementTimeoutMs?: number;
  /** Session `idle_in_transaction_session_timeout` (default 60000). */
  idleInTransactionTimeoutMs?: number;
}

/** BIGINT and NUMERIC come back as JS numbers (every such column holds ms, counts or ids within 2^53). */
const TYPES = {
  getTypeParser: ((oid: number, format?: string) =>
    oid === 20 || oid === 1700 ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format as "text")) as typeof pg.types.getTypeParser,
};

/** How often the offset between this machine's clock and the server's is measured again. */
const CLOCK_SYNC_MS = 30_000;
/** Tries of a transaction that hit a deadlock or serialization failure. */
const TX_TRIES = 5;
const EXPORT_PAGE_ROWS = 1_000;
/** Tables whose dead tuples `health` reports (updated in place on every step). */
const HOT_TABLES = ["steps", "tasks", "nodes", "counters", "kv"];
/** Health fails past these: a transaction open this long stops vacuum; this many dead tuples slow claims. */
const OLDEST_TX_LIMIT_MS = 5 * 60_000;
const DEAD_TUPLES_LIMIT = 5_000_000;
/** Health fails when this share of the server's max_connections is in use: one more node could not connect. */
const CONNECTIONS_LIMIT_SHARE = 0.9;

/**
 * The PostgreSQL store: many processes on many machines share one schema. Claims take READY
 * steps with FOR UPDATE SKIP LOCKED in one statement; the group commit is one transaction of
 * set-based statements; NOTIFY (outside it, debounced) wakes other nodes, polling stays the
 * correctness path. Times come from the server's clock.
 */
export class PostgresStore implements Store {
  readonly location: string;
  readonly shared = true;
  readonly pipelining = "concurrent";
  readonly #target: PgTarget;
  readonly #pool: pg.Pool;
  readonly #wake: WakeChannel;
  /** What this store's last commit saw (statements the next may skip). */
  readonly #hints = unknownHints();
  readonly #errorListeners = new Set<(error: Error) => void>();
  /** Failed operations not yet added to the counters table (added after the next commit that succeeds). */
  readonly #unrecordedErrors = new Map<string, number>();
  #offsetMs = 0;
  #clockTimer: NodeJS.Timeout | null = null;
  #migrated = false;
  #closed = false;

  private constructor(target: PgTarget, options: PostgresStoreOptions) {
    this.#target = target;
    this.location = target.location;
    const timeouts = {
      lock: options.lockTimeoutMs ?? 5_000,
      statement: options.statementTimeoutMs ?? 30_000,
      idle: options.idleInTransactionTimeoutMs ?? 60_000,
    };
    const config: pg.ClientConfig = {
      host: target.host, port: target.port, database: target.database, user: target.user, password: target.password,
      application_name: "relaymesh",
      options: `-c search_path="${target.schema}" -c lock_timeout=${timeouts.lock} -c statement_timeout=${timeouts.statement} ` +
        `-c idle_in_transaction_session_timeout=${timeouts.idle}`,
      connectionTimeoutMillis: 10_000,
      keepAlive: true,
      query_timeout: timeouts.statement + 5_000,
      types: TYPES,
    };
    this.#pool = new pg.Pool({ ...config, max: Math.max(2, options.poolSize), idleTimeoutMillis: 30_000 });
    // An idle connection that breaks (server restart) must never crash the process.
    this.#pool.on("error", (error) => this.#reportError(error));
    // So must one in use: its query fails (and is reported there); the event needs a listener.
    this.#pool.on("connect", (client) => client.on("error", () => undefined));
    this.#wake = new WakeChannel({
      config, channel: `rm_${target.schema}`, pool: this.#pool,
      onError: (error) => this.#reportError(new StoreError(`PostgreSQL LISTEN connection to ${this.location} lost: ${error.message}; reconnecting`, { cause: error })),
    });
  }

  /** Parses the URL (throws InvalidOptionsError naming what is wrong) and creates the pool; connects lazily. */
  static open(options: PostgresStoreOptions): PostgresStore {
    return new PostgresStore(parsePgUrl(options.url), options);
  }

  now(): number {
    return Date.now() + this.#offsetMs;
  }

  onWake(listener: () => void): () => void {
    return this.#wake.subscribe(listener);
  }

  /** Errors that happen outside any call (a broken idle connection, the LISTEN connection lost). */
  onError(listener: (error: Error) => void): () => void {
    this.#errorListeners.add(listener);
    return () => this.#errorListeners.delete(listener);
  }

  async migrate(): Promise<void> {
    const schema = `"${this.#target.schema}"`;
    await this.#tx("migrate", async (c) => {
      await c.query("SET LOCAL statement_timeout = 0");
      await c.query("SET LOCAL lock_timeout = 0");
      // Concurrent processes starting on an empty database: one migrates, the others wait and find it done.
      await c.query("SELECT pg_advisory_xact_lock(hashtext('relaymesh-migrate'), hashtext($1))", [this.#target.schema]);
      await c.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
      await c.query(`CREATE TABLE IF NOT EXISTS ${schema}.schema_migrations (id INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at_ms BIGINT NOT NULL)`);
      const done = new Set((await c.query<{ id: number }>(`SELECT id FROM ${schema}.schema_migrations`)).rows.map((r) => r.id));
      for (const m of MIGRATIONS) {
        if (done.has(m.id)) continue;
        await c.query(m.pg);
        await c.query(`INSERT INTO ${schema}.schema_migrations (id, name, applied_at_ms) VALUES ($1, $2, $3)`, [m.id, m.name, Date.now()]);
      }
    });
    await this.#syncClock();
    this.#clockTimer ??= setInterval(() => void this.#syncClock().catch(() => undefined), CLOCK_SYNC_MS).unref();
    this.#migrated = true;
  }

  /** Applied migration ids, in order. */
  async appliedMigrations(): Promise<number[]> {
    return (await this.#read("appliedMigrations", (c) => c.query<{ id: number }>(`SELECT id FROM schema_migrations ORDER BY id`))).rows.map((r) => r.id);
  }

  async commit(batch: CommitBatch): Promise<CommitResult> {
    this.#assertOpen();
    // An idle poll reads; it takes no lock and writes no row. A claim of steps this store's last
    // commits left READY (its own submissions, the claim's backlog) goes straight to the claim.
    if (isReadOnlyBatch(batch) && !(batch.claim && batch.claim.limit > 0 && this.#hints.ready.some(Boolean))) {
      const p = await this.#read("commit", (c) => probe(c, batch, this.#hints));
      if (!p.busy) return { ...emptyResult(), nextRetryAtMs: p.retryAtMs };
    }
    let madeReady = 0;
    const seen = snapshotHints(this.#hints);
    const applyOn = async (c: Queryable, careful: boolean) => {
      const b = new PgBatch(c, batch.nowMs, batch.nodeId, careful, this.#hints, seen);
      const r = await b.apply(batch);
      madeReady = b.madeReady;
      return r;
    };
    const apply = (careful: boolean) => this.#tx("commit", (c) => applyOn(c, careful), { counted: careful });
    let result: CommitResult;
    try {
      // One statement commits alone: no BEGIN and COMMIT round trips (submissions pipelined behind a group commit, enqueues,
      // successes and claims at light load).
      const alone = isOneStatement(batch, seen) || isLightCompletion(batch, seen) || isClaimAlone(batch, seen);
      result = alone ? await this.#read("commit", (c) => applyOn(c, false), { counted: false }) : await apply(false);
    } catch (error) {
      // One bad submission must not fail the batch: again, each submission in a savepoint.
      if (batch.submissions.length === 0 || isConnectionError((error as Error).cause ?? error)) {
        this.#count("commit", error);
        throw error;
      }
      result = await apply(true);
    }
    if (madeReady > result.claimed.length) this.#wake.hint();
    if (this.#unrecordedErrors.size > 0) await this.#recordErrors();
    return result;
  }

  async getTask(taskId: string): Promise<TaskWithSteps | null> {
    return this.#tx("getTask", (c) => ops.getTask(c, taskId), { readOnly: true });
  }

  async findTaskByIdempotencyKey(key: string): Promise<string | null> {
    return this.#read("findTaskByIdempotencyKey", (c) => ops.findTaskByIdempotencyKey(c, key));
  }

  async listTasks(query: { status?: TaskStatus; limit: number; offset: number }): Promise<{ tasks: TaskRecord[]; total: number }> {
    return this.#read("listTasks", (c) => ops.listTasks(c, query));
  }

  async taskStatuses(taskIds: readonly string[]): Promise<Map<string, TaskStatus>> {
    return this.#read("taskStatuses", (c) => ops.taskStatuses(c, taskIds));
  }

  async listLeaseConflicts(query: { sinceMs: number; limit: number }): Promise<LeaseConflict[]> {
    return this.#read("listLeaseConflicts", (c) => ops.listLeaseConflicts(c, query));
  }

  async counters(): Promise<Record<string, number>> {
    return this.#withUnrecorded(await this.#read("counters", (c) => ops.counters(c)));
  }

  async cancelTask(taskId: string, mode: "hard" | "soft", nowMs: number, reason?: string): Promise<CancelResult | null> {
    return this.#tx("cancelTask", (c) => ops.cancelTask(c, taskId, mode, nowMs, reason ?? null));
  }

  async replayTask(taskId: string, nowMs: number): Promise<ReplayResult | null> {
    const r = await this.#tx("replayTask", (c) => ops.replayTask(c, taskId, nowMs));
    if (r?.replayed) this.#wake.hint();
    return r;
  }

  async purge(query: PurgeQuery): Promise<PurgeResult> {
    return this.#tx("purge", (c) => ops.purge(c, query));
  }

  async removeOrphanRows(): Promise<number> {
    return this.#tx("removeOrphanRows", (c) => ops.removeOrphanRows(c));
  }

  async opsSnapshot(nowMs: number): Promise<OpsSnapshot> {
    const snapshot = await this.#tx("opsSnapshot", (c) => ops.snapshot(c, nowMs), { readOnly: true });
    return { ...snapshot, counters: this.#withUnrecorded(snapshot.counters) };
  }

  async heartbeatNode(node: NodeHeartbeat, nowMs: number): Promise<void> {
    await this.#read("heartbeatNode", (c) => ops.heartbeatNode(c, node, nowMs));
  }

  async stopNode(node: { nodeId: string; pid: number }, nowMs: number): Promise<void> {
    await this.#read("stopNode", (c) => ops.stopNode(c, node, nowMs));
  }

  async listNodes(): Promise<NodeRecord[]> {
    return this.#read("listNodes", (c) => ops.listNodes(c));
  }

  async kvGet(namespace: string, key: string): Promise<KvEntry | null> {
    return this.#read("kvGet", (c) => ops.kvGet(c, namespace, key));
  }

  async kvList(namespace: string, query: { prefix?: string; limit: number }): Promise<KvEntry[]> {
    return this.#read("kvList", (c) => ops.kvList(c, namespace, query.prefix ?? "", query.limit));
  }

  async kvChanges(namespace: string, afterVersion: number, limit: number): Promise<KvChange[]> {
    return this.#read("kvChanges", (c) => ops.kvChanges(c, namespace, afterVersion, limit));
  }

  async setMemberships(updates: MembershipUpdate[]): Promise<number> {
    if (updates.length === 0) return 0;
    return this.#read("setMemberships", (c) => ops.setMemberships(c, updates));
  }

  async reclaimStepsOfNodes(nodeIds: string[], limit: number, nowMs: number, byNode: string): Promise<number> {
    if (nodeIds.length === 0 || limit <= 0) return 0;
    const n = await this.#tx("reclaimStepsOfNodes", (c) => new PgBatch(c, nowMs, byNode, true, this.#hints).reclaimFromNodes(nodeIds, limit));
    if (n > 0) this.#wake.hint();
    return n;
  }

  async pruneNodes(olderThanMs: number, limit: number): Promise<number> {
    return this.#read("pruneNodes", (c) => ops.pruneNodes(c, olderThanMs, limit));
  }

  async ownershipEvents(sinceMs: number, limit: number): Promise<OwnershipEvent[]> {
    return this.#read("ownershipEvents", (c) => ops.ownershipEvents(c, sinceMs, limit));
  }

  async clusterEpoch(): Promise<number> {
    return this.#read("clusterEpoch", (c) => ops.clusterEpoch(c));
  }

  async bumpClusterEpoch(nowMs: number): Promise<{ clusterEpoch: number; fencedSteps: { taskId: string; stepId: string }[] }> {
    const r = await this.#tx("bumpClusterEpoch", (c) => ops.bumpClusterEpoch(c, nowMs));
    if (r.fencedSteps.length > 0) this.#wake.hint();
    return r;
  }

  async dueDeadlines(nowMs: number, limit: number): Promise<string[]> {
    return this.#read("dueDeadlines", (c) => sch.dueDeadlines(c, nowMs, limit));
  }

  async putSchedule(def: ScheduleDefinition, nowMs: number): Promise<{ schedule: ScheduleRecord; replaced: boolean }> {
    return this.#read("putSchedule", (c) => sch.putSchedule(c, def, nowMs));
  }

  async getSchedule(name: string): Promise<ScheduleRecord | null> {
    return this.#read("getSchedule", (c) => sch.getSchedule(c, name));
  }

  async listSchedules(): Promise<ScheduleRecord[]> {
    return this.#read("listSchedules", (c) => sch.listSchedules(c));
  }

  async setSchedulePaused(name: string, paused: boolean, next: { nextSlotMs: number | null; nextAtMs: number | null }, nowMs: number): Promise<ScheduleRecord | null> {
    return this.#read("setSchedulePaused", (c) => sch.setSchedulePaused(c, name, paused, next, nowMs));
  }

  async removeSchedule(name: string): Promise<boolean> {
    return this.#tx("removeSchedule", (c) => sch.removeSchedule(c, name));
  }

  async dueSchedules(nowMs: number, limit: number): Promise<ScheduleRecord[]> {
    return this.#read("dueSchedules", (c) => sch.dueSchedules(c, nowMs, limit));
  }

  async fireSchedule(fire: ScheduleFire): Promise<ScheduleFireResult> {
    const result = await this.#tx("fireSchedule", (c) => sch.fireSchedule(c, fire));
    if (result.created.length > 0) this.#wake.hint();
    return result;
  }

  async exportRows(sink: (page: RowPage) => Promise<void> | void, options?: ExportOptions): Promise<Record<string, number>> {
    return this.#tx("exportRows", async (c) => {
      const counts: Record<string, number> = {};
      for (const t of exportTables(options)) {
        const keys = t.key.join(", ");
        let after: unknown[] | null = null;
        let n = 0;
        for (;;) {
          const where: string = after ? `WHERE (${keys}) > (${t.key.map((_, i) => `$${i + 2}`).join(", ")})` : "";
          const rows: Record<string, unknown>[] = (await c.query<Record<string, unknown>>(`SELECT * FROM ${t.name} ${where} ORDER BY ${keys} LIMIT $1`,
            [EXPORT_PAGE_ROWS, ...(after ?? [])])).rows;
          if (rows.length === 0) break;
          n += rows.length;
          await sink({ table: t.name, rows });
          if (rows.length < EXPORT_PAGE_ROWS) break;
          const last: Record<string, unknown> = rows[rows.length - 1]!;
          after = t.key.map((k): unknown => last[k]);
        }
        counts[t.name] = n;
      }
      return counts;
    }, { readOnly: true });
  }

  async importRows(page: RowPage, options: ImportOptions = {}): Promise<ImportResult> {
    const plan = importColumns(page, options);
    if (!plan) return { inserted: 0, rows: [] };
    const { spec, columns, returning } = plan;
    const list = columns.join(", ");
    return this.#tx("importRows", async (c) => {
      const { rows } = await c.query<Record<string, unknown>>(`INSERT INTO ${spec.name} (${list}) SELECT ${list} FROM json_populate_recordset(NULL::${spec.name}, $1::json)
        ON CONFLICT DO NOTHING RETURNING ${returning.length > 0 ? returning.join(", ") : "1 AS one"}`, [JSON.stringify(page.rows)]);
      if (spec.serial && !options.freshIds) {
        await c.query(`SELECT setval(pg_get_serial_sequence('${spec.name}', '${spec.serial}'), GREATEST(1, (SELECT MAX(${spec.serial}) FROM ${spec.name})))`);
      }
      if (spec.name === "kv") await c.query(`SELECT setval('kv_version_seq', GREATEST(1, (SELECT MAX(version) FROM kv), (SELECT last_value FROM kv_version_seq)))`);
      return { inserted: rows.length, rows: returning.length > 0 ? rows : [] };
    });
  }

  async meta(name: string): Promise<string | null> {
    return this.#read("meta", (c) => ops.meta(c, name));
  }

  async setMeta(name: string, value: string): Promise<void> {
    await this.#read("setMeta", (c) => ops.setMeta(c, name, value));
  }

  async addSettingsChange(change: SettingsChange): Promise<void> {
    await this.#read("addSettingsChange", (c) => ops.addSettingsChange(c, change));
  }

  async settingsHistory(limit: number): Promise<SettingsChange[]> {
    return (await this.#read("settingsHistory", (c) => ops.settingsHistory(c, limit))).map((r: SettingsRow) => toSettingsChange(r));
  }

  async appendAudit(entries: AuditEntry[]): Promise<void> {
    await this.#read("appendAudit", (c) => ops.appendAudit(c, entries));
  }

  async auditEntries(filter: AuditFilter): Promise<AuditEntry[]> {
    return this.#read("auditEntries", (c) => ops.auditEntries(c, filter));
  }

  async health(): Promise<HealthCheck[]> {
    const checks: HealthCheck[] = [];
    const check = async (name: string, fn: () => Promise<string | { ok: boolean; detail: string }>) => {
      try {
        const r = await fn();
        checks.push(typeof r === "string" ? { name, ok: true, detail: r } : { name, ...r });
      } catch (error) {
        checks.push({ name, ok: false, detail: (error as Error).message });
      }
    };
    await check("store-open", async () => {
      if (this.#closed || !this.#migrated) throw new Error("store is closed or not migrated");
      return this.location;
    });
    await check("store-writable", async () => {
      await this.#tx("health", (c) => c.query(`INSERT INTO counters (name, value) VALUES ('health_check_total', 1)
        ON CONFLICT (name) DO UPDATE SET value = counters.value + 1`));
      return "a write transaction committed";
    });
    await check("dead-tuples", async () => {
      const { rows } = await this.#pool.query<{ relname: string; dead: number; live: number }>(
        `SELECT relname, n_dead_tup::bigint AS dead, n_live_tup::bigint AS live FROM pg_stat_user_tables
         WHERE schemaname = $1 AND relname = ANY($2::text[]) ORDER BY relname`, [this.#target.schema, HOT_TABLES]);
      const worst = Math.max(0, ...rows.map((r) => r.dead));
      return { ok: worst < DEAD_TUPLES_LIMIT, detail: rows.map((r) => `${r.relname}: ${r.dead} dead / ${r.live} live`).join(", ") || "no statistics yet" };
    });
    await check("oldest-transaction", async () => {
      const { rows } = await this.#pool.query<{ ms: number }>(
        `SELECT COALESCE(EXTRACT(EPOCH FROM MAX(clock_timestamp() - xact_start)) * 1000, 0)::bigint AS ms FROM pg_stat_activity
         WHERE datname = current_database() AND xact_start IS NOT NULL AND pid <> pg_backend_pid()`);
      const ms = rows[0]!.ms;
      return { ok: ms < OLDEST_TX_LIMIT_MS, detail: `oldest open transaction: ${ms} ms (vacuum cannot clean past it; limit ${OLDEST_TX_LIMIT_MS} ms)` };
    });
    await check("connections", async () => {
      const { rows } = await this.#pool.query<{ used: number; max: number; ours: number }>(
        `SELECT (SELECT COUNT(*) FROM pg_stat_activity)::bigint AS used, current_setting('max_connections')::bigint AS max,
           (SELECT COUNT(*) FROM pg_stat_activity WHERE application_name = 'relaymesh' AND datname = current_database())::bigint AS ours`);
      const { used, max, ours } = rows[0]!;
      return {
        ok: used < max * CONNECTIONS_LIMIT_SHARE,
        detail: `${used} of the server's ${max} connections in use, ${ours} by RelayMesh (each working node opens concurrency + 3); fails past ${Math.round(CONNECTIONS_LIMIT_SHARE * 100)}%`,
      };
    });
    await check("clock", async () => `server clock is ${Math.round(this.#offsetMs)} ms ahead of this machine's; leases use the server's`);
    return checks;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#clockTimer) clearInterval(this.#clockTimer);
    await this.#wake.close();
    await this.#pool.end();
  }

  async #syncClock(): Promise<void> {
    const t0 = Date.now();
    const { rows } = await this.#pool.query<{ ms: number }>(`SELECT (EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::float8 AS ms`);
    const t1 = Date.now();
    this.#offsetMs = Math.round(rows[0]!.ms - (t0 + t1) / 2);
  }

  /** Counts a failed operation by its SQLSTATE (or Node error code; "unknown" without one), for `relaymesh_store_errors_total`. */
  #count(operation: string, error: unknown): void {
    // A StoreError without a cause is the store's own refusal (closed, not migrated), not a failed operation.
    const cause = error instanceof StoreError ? error.cause : error;
    if (cause === undefined || cause === null) return;
    const code = (cause as { code?: unknown }).code;
    const name = `${STORE_ERRORS_COUNTER}:${operation}:${typeof code === "string" && code !== "" ? code : "unknown"}`;
    this.#unrecordedErrors.set(name, (this.#unrecordedErrors.get(name) ?? 0) + 1);
  }

  /** Adds the failures counted since the last successful commit to the shared counters (kept for later if this fails too). */
  async #recordErrors(): Promise<void> {
    const errors = new Map(this.#unrecordedErrors);
    this.#unrecordedErrors.clear();
    try {
      await ops.bumpCounters(this.#pool, errors);
    } catch {
      for (const [name, n] of errors) this.#unrecordedErrors.set(name, (this.#unrecordedErrors.get(name) ?? 0) + n);
    }
  }

  /** Counters read from the store plus this process's failures not yet written there. */
  #withUnrecorded(counters: Record<string, number>): Record<string, number> {
    const out = { ...counters };
    for (const [name, n] of this.#unrecordedErrors) out[name] = (out[name] ?? 0) + n;
    return out;
  }

  #reportError(error: Error): void {
    for (const l of this.#errorListeners) l(error);
  }

  #assertOpen(): void {
    if (this.#closed || !this.#migrated) throw new StoreError("store is not migrated (call migrate() first) or is closed");
  }

  /** One statement (or a few, outside a transaction) on any connection. */
  async #read<T>(operation: string, fn: (db: Queryable) => Promise<T>, options: { counted?: boolean } = {}): Promise<T> {
    if (this.#closed) throw new StoreError("store is closed");
    try {
      return await fn(this.#pool);
    } catch (error) {
      if (options.counted ?? true) this.#count(operation, error);
      throw this.#wrap(error, operation);
    }
  }

  /** A transaction on one connection; tried again after a deadlock or serialization failure. */
  async #tx<T>(operation: string, fn: (db: pg.PoolClient) => Promise<T>, options: { readOnly?: boolean; counted?: boolean } = {}): Promise<T> {
    if (this.#closed) throw new StoreError("store is closed");
    const fail = (error: unknown): StoreError => {
      if (options.counted ?? true) this.#count(operation, error);
      return this.#wrap(error, operation);
    };
    for (let attempt = 1; ; attempt++) {
      let client: pg.PoolClient;
      try {
        client = await this.#pool.connect();
      } catch (error) {
        throw fail(error);
      }
      let broken = false;
      try {
        await client.query(options.readOnly ? "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY" : "BEGIN");
        const result = await fn(client);
        await client.query("COMMIT");
        return result;
      } catch (error) {
        broken = isConnectionError(error);
        if (!broken) await client.query("ROLLBACK").catch(() => { broken = true; });
        const code = (error as { code?: string }).code;
        if (!broken && code !== undefined && RETRYABLE_SQLSTATES.has(code) && attempt < TX_TRIES) continue;
        throw fail(error);
      } finally {
        client.release(broken || undefined);
      }
    }
  }

  #wrap(error: unknown, operation: string): StoreError {
    if (error instanceof StoreError) return error;
    const code = (error as { code?: string }).code;
    return new StoreError(`PostgreSQL ${operation} failed on ${this.location}${code ? ` (${code})` : ""}: ${(error as Error).message}`, { cause: error });
  }
}
