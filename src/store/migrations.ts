/**
 * Numbered, append-only schema migrations. Each step carries both dialects so the SQLite and
 * PostgreSQL schemas cannot drift. Never edit a released step: add the next one.
 */
export interface Migration {
  id: number;
  name: string;
  sqlite: string;
  pg: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    id: 1,
    name: "tasks, steps, edges, lease conflicts, counters",
    sqlite: `
      CREATE TABLE tasks (
        task_id TEXT PRIMARY KEY,
        name TEXT,
        status TEXT NOT NULL,
        priority INTEGER NOT NULL,
        idempotency_key TEXT UNIQUE,
        fail_fast INTEGER NOT NULL,
        trace_id TEXT NOT NULL,
        parent_span_id TEXT,
        steps_total INTEGER NOT NULL,
        steps_open INTEGER NOT NULL,
        dead_count INTEGER NOT NULL DEFAULT 0,
        cancelled_count INTEGER NOT NULL DEFAULT 0,
        created_at_ms INTEGER NOT NULL,
        updated_at_ms INTEGER NOT NULL,
        finished_at_ms INTEGER
      );
      CREATE INDEX tasks_created ON tasks (created_at_ms);
      CREATE INDEX tasks_status_created ON tasks (status, created_at_ms);
      CREATE TABLE steps (
        id INTEGER PRIMARY KEY,
        task_id TEXT NOT NULL,
        step_id TEXT NOT NULL,
        agent TEXT NOT NULL,
        status TEXT NOT NULL,
        priority INTEGER NOT NULL,
        trace_id TEXT NOT NULL,
        input_json TEXT NOT NULL,
        output_json TEXT,
        error_json TEXT,
        depends_on_json TEXT NOT NULL,
        deps_open INTEGER NOT NULL,
        attempt INTEGER NOT NULL DEFAULT 0,
        max_attempts INTEGER NOT NULL,
        base_backoff_ms INTEGER NOT NULL,
        max_backoff_ms INTEGER NOT NULL,
        timeout_ms INTEGER,
        lease_owner TEXT,
        lease_epoch INTEGER NOT NULL DEFAULT 0,
        lease_expires_at_ms INTEGER,
        ready_at_ms INTEGER,
        started_at_ms INTEGER,
        finished_at_ms INTEGER,
        UNIQUE (task_id, step_id)
      );
      CREATE INDEX steps_ready ON steps (priority, ready_at_ms, id) WHERE status = 'READY';
      CREATE INDEX steps_retry ON steps (ready_at_ms) WHERE status = 'RETRY_WAIT';
      CREATE INDEX steps_running ON steps (lease_expires_at_ms) WHERE status = 'RUNNING';
      CREATE TABLE edges (
        task_id TEXT NOT NULL,
        from_step TEXT NOT NULL,
        to_step TEXT NOT NULL,
        PRIMARY KEY (task_id, from_step, to_step)
      ) WITHOUT ROWID;
      CREATE INDEX edges_to ON edges (task_id, to_step);
      CREATE TABLE lease_conflicts (
        id INTEGER PRIMARY KEY,
        task_id TEXT NOT NULL,
        step_id TEXT NOT NULL,
        expected_epoch INTEGER NOT NULL,
        actual_epoch INTEGER,
        node_id TEXT NOT NULL,
        operation TEXT NOT NULL,
        at_ms INTEGER NOT NULL
      );
      CREATE INDEX lease_conflicts_at ON lease_conflicts (at_ms);
      CREATE TABLE counters (
        name TEXT PRIMARY KEY,
        value INTEGER NOT NULL
      ) WITHOUT ROWID;
    `,
    pg: `
      CREATE TABLE tasks (
        task_id TEXT PRIMARY KEY,
        name TEXT,
        status TEXT NOT NULL,
        priority INTEGER NOT NULL,
        idempotency_key TEXT UNIQUE,
        fail_fast BOOLEAN NOT NULL,
        trace_id TEXT NOT NULL,
        parent_span_id TEXT,
        steps_total INTEGER NOT NULL,
        steps_open INTEGER NOT NULL,
        dead_count INTEGER NOT NULL DEFAULT 0,
        cancelled_count INTEGER NOT NULL DEFAULT 0,
        created_at_ms BIGINT NOT NULL,
        updated_at_ms BIGINT NOT NULL,
        finished_at_ms BIGINT
      );
      CREATE INDEX tasks_created ON tasks (created_at_ms);
      CREATE INDEX tasks_status_created ON tasks (status, created_at_ms);
      CREATE TABLE steps (
        id BIGSERIAL PRIMARY KEY,
        task_id TEXT NOT NULL,
        step_id TEXT NOT NULL,
        agent TEXT NOT NULL,
        status TEXT NOT NULL,
        priority INTEGER NOT NULL,
        trace_id TEXT NOT NULL,
        input_json TEXT NOT NULL,
        output_json TEXT,
        error_json TEXT,
        depends_on_json TEXT NOT NULL,
        deps_open INTEGER NOT NULL,
        attempt INTEGER NOT NULL DEFAULT 0,
        max_attempts INTEGER NOT NULL,
        base_backoff_ms INTEGER NOT NULL,
        max_backoff_ms INTEGER NOT NULL,
        timeout_ms INTEGER,
        lease_owner TEXT,
        lease_epoch INTEGER NOT NULL DEFAULT 0,
        lease_expires_at_ms BIGINT,
        ready_at_ms BIGINT,
        started_at_ms BIGINT,
        finished_at_ms BIGINT,
        UNIQUE (task_id, step_id)
      );
      CREATE INDEX steps_ready ON steps (priority, ready_at_ms, id) WHERE status = 'READY';
      CREATE INDEX steps_retry ON steps (ready_at_ms) WHERE status = 'RETRY_WAIT';
      CREATE INDEX steps_running ON steps (lease_expires_at_ms) WHERE status = 'RUNNING';
      CREATE TABLE edges (
        task_id TEXT NOT NULL,
        from_step TEXT NOT NULL,
        to_step TEXT NOT NULL,
        PRIMARY KEY (task_id, from_step, to_step)
      );
      CREATE INDEX edges_to ON edges (task_id, to_step);
      CREATE TABLE lease_conflicts (
        id BIGSERIAL PRIMARY KEY,
        task_id TEXT NOT NULL,
        step_id TEXT NOT NULL,
        expected_epoch INTEGER NOT NULL,
        actual_epoch INTEGER,
        node_id TEXT NOT NULL,
        operation TEXT NOT NULL,
        at_ms BIGINT NOT NULL
      );
      CREATE INDEX lease_conflicts_at ON lease_conflicts (at_ms);
      CREATE TABLE counters (
        name TEXT PRIMARY KEY,
        value BIGINT NOT NULL
      );
    `,
  },
  {
    id: 2,
    name: "steps.dependents: how many steps wait on each step (a success with none resolves no DAG edge)",
    sqlite: `
      ALTER TABLE steps ADD COLUMN dependents INTEGER NOT NULL DEFAULT 0;
      UPDATE steps SET dependents = (SELECT COUNT(*) FROM edges e WHERE e.task_id = steps.task_id AND e.from_step = steps.step_id);
    `,
    pg: `
      ALTER TABLE steps ADD COLUMN dependents INTEGER NOT NULL DEFAULT 0;
      UPDATE steps SET dependents = (SELECT COUNT(*) FROM edges e WHERE e.task_id = steps.task_id AND e.from_step = steps.step_id);
    `,
  },
  {
    id: 3,
    name: "nodes (worker heartbeats), replay rounds",
    sqlite: `
      CREATE TABLE nodes (
        node_id TEXT PRIMARY KEY,
        hostname TEXT NOT NULL,
        pid INTEGER NOT NULL,
        state TEXT NOT NULL,
        started_at_ms INTEGER NOT NULL,
        last_heartbeat_ms INTEGER NOT NULL,
        stopped_at_ms INTEGER
      );
      ALTER TABLE steps ADD COLUMN replays INTEGER NOT NULL DEFAULT 0;
      ALTER TABLE tasks ADD COLUMN replays INTEGER NOT NULL DEFAULT 0;
      CREATE INDEX tasks_finished ON tasks (finished_at_ms) WHERE finished_at_ms IS NOT NULL;
    `,
    pg: `
      CREATE TABLE nodes (
        node_id TEXT PRIMARY KEY,
        hostname TEXT NOT NULL,
        pid INTEGER NOT NULL,
        state TEXT NOT NULL,
        started_at_ms BIGINT NOT NULL,
        last_heartbeat_ms BIGINT NOT NULL,
        stopped_at_ms BIGINT
      );
      ALTER TABLE steps ADD COLUMN replays INTEGER NOT NULL DEFAULT 0;
      ALTER TABLE tasks ADD COLUMN replays INTEGER NOT NULL DEFAULT 0;
      CREATE INDEX tasks_finished ON tasks (finished_at_ms) WHERE finished_at_ms IS NOT NULL;
    `,
  },
  {
    id: 4,
    name: "kv checkpoints (fenced writes, versions for watchers, tombstones), step progress",
    sqlite: `
      CREATE TABLE kv (
        namespace TEXT NOT NULL,
        key TEXT NOT NULL,
        value_json TEXT,
        deleted INTEGER NOT NULL DEFAULT 0,
        version INTEGER NOT NULL,
        updated_at_ms INTEGER NOT NULL,
        writer TEXT NOT NULL,
        PRIMARY KEY (namespace, key)
      ) WITHOUT ROWID;
      CREATE INDEX kv_version ON kv (namespace, version);
      ALTER TABLE steps ADD COLUMN progress_pct REAL;
      ALTER TABLE steps ADD COLUMN progress_message TEXT;
    `,
    pg: `
      CREATE TABLE kv (
        namespace TEXT NOT NULL,
        key TEXT NOT NULL,
        value_json TEXT,
        deleted BOOLEAN NOT NULL DEFAULT FALSE,
        version BIGINT NOT NULL,
        updated_at_ms BIGINT NOT NULL,
        writer TEXT NOT NULL,
        PRIMARY KEY (namespace, key)
      );
      CREATE INDEX kv_version ON kv (namespace, version);
      ALTER TABLE steps ADD COLUMN progress_pct DOUBLE PRECISION;
      ALTER TABLE steps ADD COLUMN progress_message TEXT;
    `,
  },
  {
    id: 5,
    name: "step inputs and outputs in tables of their own (written once), so the rows updated at claim and completion stay narrow",
    sqlite: `
      CREATE TABLE step_inputs (step_row_id INTEGER PRIMARY KEY, input_json TEXT NOT NULL);
      CREATE TABLE step_outputs (step_row_id INTEGER PRIMARY KEY, output_json TEXT NOT NULL);
      INSERT INTO step_inputs (step_row_id, input_json) SELECT id, input_json FROM steps;
      INSERT INTO step_outputs (step_row_id, output_json) SELECT id, output_json FROM steps WHERE output_json IS NOT NULL;
      ALTER TABLE steps DROP COLUMN input_json;
      ALTER TABLE steps DROP COLUMN output_json;
    `,
    pg: `
      CREATE TABLE step_inputs (step_row_id BIGINT PRIMARY KEY, input_json TEXT NOT NULL);
      CREATE TABLE step_outputs (step_row_id BIGINT PRIMARY KEY, output_json TEXT NOT NULL);
      INSERT INTO step_inputs (step_row_id, input_json) SELECT id, input_json FROM steps;
      INSERT INTO step_outputs (step_row_id, output_json) SELECT id, output_json FROM steps WHERE output_json IS NOT NULL;
      ALTER TABLE steps DROP COLUMN input_json, DROP COLUMN output_json;
    `,
  },
  {
    id: 6,
    name: "membership standing of nodes, ownership events timeline",
    sqlite: `
      ALTER TABLE nodes ADD COLUMN membership TEXT NOT NULL DEFAULT 'ALIVE';
      ALTER TABLE nodes ADD COLUMN membership_since_ms INTEGER NOT NULL DEFAULT 0;
      CREATE TABLE ownership_events (
        id INTEGER PRIMARY KEY,
        at_ms INTEGER NOT NULL,
        kind TEXT NOT NULL,
        task_id TEXT,
        step_id TEXT,
        node_id TEXT NOT NULL,
        from_node TEXT,
        lease_epoch INTEGER,
        details_json TEXT NOT NULL DEFAULT '{}'
      );
      CREATE INDEX ownership_events_at ON ownership_events (at_ms);
    `,
    pg: `
      ALTER TABLE nodes ADD COLUMN membership TEXT NOT NULL DEFAULT 'ALIVE';
      ALTER TABLE nodes ADD COLUMN membership_since_ms BIGINT NOT NULL DEFAULT 0;
      CREATE TABLE ownership_events (
        id BIGSERIAL PRIMARY KEY,
        at_ms BIGINT NOT NULL,
        kind TEXT NOT NULL,
        task_id TEXT,
        step_id TEXT,
        node_id TEXT NOT NULL,
        from_node TEXT,
        lease_epoch INTEGER,
        details_json TEXT NOT NULL DEFAULT '{}'
      );
      CREATE INDEX ownership_events_at ON ownership_events (at_ms);
    `,
  },
  {
    id: 7,
    name: "PostgreSQL: claim index matching the claim's ORDER BY, fillfactor and autovacuum on tables updated in place, kv versions from a sequence",
    sqlite: `
      -- SQLite: nothing (its claim reads each priority class through steps_ready; kv versions stay a counter row).
    `,
    pg: `
      CREATE INDEX steps_claim ON steps (priority DESC, ready_at_ms, id) WHERE status = 'READY';
      DROP INDEX steps_ready;
      ALTER TABLE steps SET (fillfactor = 70, autovacuum_vacuum_scale_factor = 0.02, autovacuum_analyze_scale_factor = 0.02);
      ALTER TABLE tasks SET (fillfactor = 80, autovacuum_vacuum_scale_factor = 0.05);
      ALTER TABLE nodes SET (fillfactor = 50);
      ALTER TABLE counters SET (fillfactor = 50);
      CREATE SEQUENCE kv_version_seq;
      SELECT setval('kv_version_seq', GREATEST(1, COALESCE((SELECT MAX(version) FROM kv), 0), COALESCE((SELECT value FROM counters WHERE name = 'kv_version'), 0)));
    `,
  },
  {
    id: 8,
    name: "time and flow control: delayed starts, concurrency keys, rate-limit buckets, deadlines, dedupe windows, cron schedules",
    sqlite: `
      ALTER TABLE steps ADD COLUMN not_before_ms INTEGER;
      ALTER TABLE steps ADD COLUMN deadline_at_ms INTEGER;
      ALTER TABLE steps ADD COLUMN concurrency_key TEXT;
      ALTER TABLE steps ADD COLUMN concurrency_limit INTEGER;
      ALTER TABLE steps ADD COLUMN concurrency_strategy TEXT;
      ALTER TABLE steps ADD COLUMN rate_name TEXT;
      ALTER TABLE steps ADD COLUMN rate_bucket TEXT;
      ALTER TABLE steps ADD COLUMN rate_per_sec REAL;
      ALTER TABLE steps ADD COLUMN rate_burst INTEGER;
      CREATE INDEX steps_timed ON steps (ready_at_ms) WHERE status IN ('SCHEDULED', 'THROTTLED');
      CREATE INDEX steps_queued ON steps (concurrency_key, ready_at_ms, id) WHERE status = 'QUEUED';
      CREATE INDEX steps_slots ON steps (concurrency_key, status) WHERE concurrency_key IS NOT NULL;
      ALTER TABLE tasks ADD COLUMN deadline_at_ms INTEGER;
      ALTER TABLE tasks ADD COLUMN cancel_reason TEXT;
      ALTER TABLE tasks ADD COLUMN schedule_name TEXT;
      CREATE INDEX tasks_deadline ON tasks (deadline_at_ms) WHERE deadline_at_ms IS NOT NULL AND status IN ('PENDING', 'RUNNING');
      CREATE TABLE dedupe_keys (key TEXT PRIMARY KEY, task_id TEXT NOT NULL, expires_at_ms INTEGER NOT NULL) WITHOUT ROWID;
      CREATE TABLE rate_buckets (bucket TEXT PRIMARY KEY, tat_ms REAL NOT NULL) WITHOUT ROWID;
      CREATE TABLE schedules (
        name TEXT PRIMARY KEY,
        cron TEXT NOT NULL,
        timezone TEXT,
        spec_json TEXT NOT NULL,
        overlap TEXT NOT NULL,
        catch_up TEXT NOT NULL,
        catch_up_window_ms INTEGER,
        jitter_ms INTEGER NOT NULL,
        paused INTEGER NOT NULL DEFAULT 0,
        next_slot_ms INTEGER,
        next_at_ms INTEGER,
        last_slot_ms INTEGER,
        last_task_id TEXT,
        fired_count INTEGER NOT NULL DEFAULT 0,
        skipped_count INTEGER NOT NULL DEFAULT 0,
        created_at_ms INTEGER NOT NULL,
        updated_at_ms INTEGER NOT NULL
      );
      CREATE INDEX schedules_due ON schedules (next_at_ms) WHERE paused = 0;
      CREATE TABLE schedule_fires (
        name TEXT NOT NULL,
        slot_key TEXT NOT NULL,
        slot_ms INTEGER NOT NULL,
        task_id TEXT,
        outcome TEXT NOT NULL,
        node_id TEXT NOT NULL,
        at_ms INTEGER NOT NULL,
        PRIMARY KEY (name, slot_key)
      ) WITHOUT ROWID;
    `,
    pg: `
      ALTER TABLE steps ADD COLUMN not_before_ms BIGINT, ADD COLUMN deadline_at_ms BIGINT, ADD COLUMN concurrency_key TEXT,
        ADD COLUMN concurrency_limit INTEGER, ADD COLUMN concurrency_strategy TEXT, ADD COLUMN rate_name TEXT,
        ADD COLUMN rate_bucket TEXT, ADD COLUMN rate_per_sec DOUBLE PRECISION, ADD COLUMN rate_burst INTEGER;
      CREATE INDEX steps_timed ON steps (ready_at_ms) WHERE status IN ('SCHEDULED', 'THROTTLED');
      CREATE INDEX steps_queued ON steps (concurrency_key, ready_at_ms, id) WHERE status = 'QUEUED';
      CREATE INDEX steps_slots ON steps (concurrency_key, status) WHERE concurrency_key IS NOT NULL;
      ALTER TABLE tasks ADD COLUMN deadline_at_ms BIGINT, ADD COLUMN cancel_reason TEXT, ADD COLUMN schedule_name TEXT;
      CREATE INDEX tasks_deadline ON tasks (deadline_at_ms) WHERE deadline_at_ms IS NOT NULL AND status IN ('PENDING', 'RUNNING');
      CREATE TABLE dedupe_keys (key TEXT PRIMARY KEY, task_id TEXT NOT NULL, expires_at_ms BIGINT NOT NULL);
      CREATE TABLE rate_buckets (bucket TEXT PRIMARY KEY, tat_ms DOUBLE PRECISION NOT NULL);
      CREATE TABLE schedules (
        name TEXT PRIMARY KEY,
        cron TEXT NOT NULL,
        timezone TEXT,
        spec_json TEXT NOT NULL,
        overlap TEXT NOT NULL,
        catch_up TEXT NOT NULL,
        catch_up_window_ms BIGINT,
        jitter_ms BIGINT NOT NULL,
        paused BOOLEAN NOT NULL DEFAULT FALSE,
        next_slot_ms BIGINT,
        next_at_ms BIGINT,
        last_slot_ms BIGINT,
        last_task_id TEXT,
        fired_count BIGINT NOT NULL DEFAULT 0,
        skipped_count BIGINT NOT NULL DEFAULT 0,
        created_at_ms BIGINT NOT NULL,
        updated_at_ms BIGINT NOT NULL
      );
      CREATE INDEX schedules_due ON schedules (next_at_ms) WHERE NOT paused;
      CREATE TABLE schedule_fires (
        name TEXT NOT NULL,
        slot_key TEXT NOT NULL,
        slot_ms BIGINT NOT NULL,
        task_id TEXT,
        outcome TEXT NOT NULL,
        node_id TEXT NOT NULL,
        at_ms BIGINT NOT NULL,
        PRIMARY KEY (name, slot_key)
      );
    `,
  },
  {
    id: 9,
    name: "store identity (origin) for migrations between stores, settings history in the store",
    sqlite: `
      CREATE TABLE store_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
      INSERT INTO store_meta (name, value) VALUES ('origin', lower(hex(randomblob(16))));
      CREATE TABLE settings_history (
        entry_id TEXT PRIMARY KEY,
        at_ms INTEGER NOT NULL,
        node_id TEXT,
        actor TEXT NOT NULL,
        result TEXT NOT NULL,
        changed_fields_json TEXT NOT NULL,
        error TEXT
      ) WITHOUT ROWID;
      CREATE INDEX settings_history_at ON settings_history (at_ms);
    `,
    pg: `
      CREATE TABLE store_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
      INSERT INTO store_meta (name, value) VALUES ('origin', md5(random()::text || clock_timestamp()::text));
      CREATE TABLE settings_history (
        entry_id TEXT PRIMARY KEY,
        at_ms BIGINT NOT NULL,
        node_id TEXT,
        actor TEXT NOT NULL,
        result TEXT NOT NULL,
        changed_fields_json TEXT NOT NULL,
        error TEXT
      );
      CREATE INDEX settings_history_at ON settings_history (at_ms);
    `,
  },
  {
    id: 10,
    name: "nodes advertise the agents they serve and report their load (CPU, memory, running steps, capacity)",
    sqlite: `
      ALTER TABLE nodes ADD COLUMN agents_json TEXT;
      ALTER TABLE nodes ADD COLUMN cpu_load REAL;
      ALTER TABLE nodes ADD COLUMN mem_load REAL;
      ALTER TABLE nodes ADD COLUMN running INTEGER;
      ALTER TABLE nodes ADD COLUMN capacity INTEGER;
    `,
    pg: `
      ALTER TABLE nodes ADD COLUMN agents_json TEXT, ADD COLUMN cpu_load DOUBLE PRECISION, ADD COLUMN mem_load DOUBLE PRECISION,
        ADD COLUMN running INTEGER, ADD COLUMN capacity INTEGER;
    `,
  },
  {
    id: 11,
    name: "cluster-wide audit records (written in batches by every node of a shared store)",
    sqlite: `
      -- SQLite keeps its audit in the root's JSONL file; this table holds the audit of a PostgreSQL snapshot imported here.
      CREATE TABLE audit_records (
        id INTEGER PRIMARY KEY,
        at_ms INTEGER NOT NULL,
        node_id TEXT NOT NULL,
        action TEXT NOT NULL,
        actor TEXT NOT NULL,
        resource TEXT NOT NULL,
        result TEXT NOT NULL,
        trace_id TEXT,
        span_id TEXT,
        task_id TEXT,
        step_id TEXT,
        details_json TEXT NOT NULL
      );
      CREATE INDEX audit_records_at ON audit_records (at_ms, id);
      CREATE INDEX audit_records_task ON audit_records (task_id, at_ms) WHERE task_id IS NOT NULL;
    `,
    pg: `
      CREATE TABLE audit_records (
        id BIGSERIAL PRIMARY KEY,
        at_ms BIGINT NOT NULL,
        node_id TEXT NOT NULL,
        action TEXT NOT NULL,
        actor TEXT NOT NULL,
        resource TEXT NOT NULL,
        result TEXT NOT NULL,
        trace_id TEXT,
        span_id TEXT,
        task_id TEXT,
        step_id TEXT,
        details_json TEXT NOT NULL
      );
      CREATE INDEX audit_records_at ON audit_records (at_ms, id);
      CREATE INDEX audit_records_task ON audit_records (task_id, at_ms) WHERE task_id IS NOT NULL;
    `,
  },
  {
    id: 12,
    name: "PostgreSQL: the claim walks its index in order whatever the statistics say",
    sqlite: `
      -- SQLite: nothing (its planner takes steps_ready in order).
    `,
    pg: `
      -- Right after a burst of submissions the planner's statistics still say that few steps are
      -- READY, and it would sort the whole runnable set on every claim (a bitmap scan, then a
      -- sort: milliseconds per claim at 10,000 READY steps, seconds at millions). The pick runs
      -- with sorts and bitmap scans off, so the only plan is steps_claim in order, LIMIT rows; ROWS
      -- tells the statement around it to expect a batch (index lookups, not a scan of steps).
      CREATE FUNCTION claim_pick(lim integer, agents text[], class integer) RETURNS SETOF bigint
        LANGUAGE sql VOLATILE ROWS 32 SET search_path FROM CURRENT SET enable_sort = off SET enable_bitmapscan = off SET enable_seqscan = off
        AS 'SELECT id FROM steps WHERE status = ''READY'' AND (class IS NULL OR priority = class)
              AND (agents IS NULL OR agent = ANY(agents))
            ORDER BY priority DESC, ready_at_ms, id LIMIT lim FOR UPDATE SKIP LOCKED';
    `,
  },
  {
    id: 13,
    name: "PostgreSQL: a claim at light load runs without a transaction when no READY step is rate-limited",
    sqlite: `
      -- SQLite: nothing (its claims always run in the group commit's transaction).
    `,
    pg: `
      -- A claim's rate-limited steps take tokens in the claim's transaction. The tail asks whether
      -- any READY step is rate-limited (this index keeps that a lookup, not a walk of the READY
      -- set); while none is, a claim alone is one statement picking steps without a rate limit.
      CREATE INDEX steps_ready_rated ON steps (agent) WHERE status = 'READY' AND rate_bucket IS NOT NULL;
      CREATE FUNCTION claim_pick_unrated(lim integer, agents text[], class integer) RETURNS SETOF bigint
        LANGUAGE sql VOLATILE ROWS 32 SET search_path FROM CURRENT SET enable_sort = off SET enable_bitmapscan = off SET enable_seqscan = off
        AS 'SELECT id FROM steps WHERE status = ''READY'' AND (class IS NULL OR priority = class)
              AND (agents IS NULL OR agent = ANY(agents)) AND rate_bucket IS NULL
            ORDER BY priority DESC, ready_at_ms, id LIMIT lim FOR UPDATE SKIP LOCKED';
    `,
  },
  {
    id: 14,
    name: "PostgreSQL: the idempotency key index holds only tasks that have a key",
    sqlite: `
      -- SQLite: nothing (an UPDATE there touches only the indexes of the columns it changes).
    `,
    pg: `
      -- Every task row version (insert, start, finish: none of them HOT, the status is indexed)
      -- added an entry for its NULL key to the unique index; a partial index keeps the same
      -- uniqueness and lookups (idempotency_key = ... implies NOT NULL) without them: 6% fewer
      -- WAL bytes per step of a drain of one-step tasks.
      ALTER TABLE tasks DROP CONSTRAINT tasks_idempotency_key_key;
      CREATE UNIQUE INDEX tasks_idempotency_key ON tasks (idempotency_key) WHERE idempotency_key IS NOT NULL;
    `,
  },
];
