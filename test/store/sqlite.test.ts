import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import Database from "better-sqlite3";
import { SqliteStore } from "../../src/store/sqlite/store.js";
import { SqliteThreadStore } from "../../src/store/sqlite/thread-store.js";
import { MIGRATIONS } from "../../src/store/migrations.js";
import { ErrorCode } from "../../src/errors.js";
import type { CommitBatch, NewTask } from "../../src/store/types.js";
import { storeConformance, type StoreFactory } from "./conformance.js";
import { meshConformance } from "./mesh-conformance.js";
import { REPO, tempRoot, withDeadline } from "../helpers.js";

const sqliteFactory: StoreFactory = async () => {
  const { root, cleanup } = tempRoot("relaymesh-store-");
  const path = join(root, "relaymesh.db");
  const opened: SqliteStore[] = [];
  const open = async () => {
    const store = SqliteStore.open({ path, durability: "full" });
    opened.push(store);
    await store.migrate();
    return store;
  };
  const store = await open();
  return { store, another: open, async cleanup() { for (const s of opened) await s.close(); cleanup(); } };
};
storeConformance("sqlite", sqliteFactory);
meshConformance("sqlite", sqliteFactory);

// The same suites through the store thread the engine uses (calls cross a thread; errors are rebuilt from their codes).
const threadFactory: StoreFactory = async () => {
  const { root, cleanup } = tempRoot("relaymesh-store-thread-");
  const path = join(root, "relaymesh.db");
  const opened: SqliteThreadStore[] = [];
  const open = async () => {
    const store = await SqliteThreadStore.open({ path, durability: "full" });
    opened.push(store);
    await store.migrate();
    return store;
  };
  const store = await open();
  return { store, another: open, async cleanup() { for (const s of opened) await s.close(); cleanup(); } };
};
storeConformance("sqlite-thread", threadFactory);
meshConformance("sqlite-thread", threadFactory);

function oneStepTask(): NewTask {
  return {
    taskId: randomUUID(), name: null, priority: 1, idempotencyKey: null, failFast: false,
    traceId: randomUUID().replace(/-/g, ""), parentSpanId: null,
    steps: [{ stepId: "s", agent: "echo", inputJson: "1", priority: 1, dependsOn: [], maxAttempts: 1, baseBackoffMs: 0, maxBackoffMs: 0, timeoutMs: null }],
  };
}

function submitBatch(task: NewTask): CommitBatch {
  return {
    nowMs: Date.now(), nodeId: "n", leaseTimeoutMs: 1_000, submissions: [task], completions: [], failures: [], renewals: [],
    releases: [], releaseRetriesLimit: 0, reclaimExpiredLimit: 0, claim: null,
  };
}

function appliedMigrations(path: string): number[] {
  const db = new Database(path, { readonly: true });
  try {
    return (db.prepare("SELECT id FROM schema_migrations ORDER BY id").all() as { id: number }[]).map((r) => r.id);
  } finally {
    db.close();
  }
}

describe("SqliteStore (SQLite only)", () => {
  test("SqliteStore.purge: a purged task leaves no row behind in any table", async (t) => {
    const { root, cleanup } = tempRoot();
    const path = join(root, "purge.db");
    const store = SqliteStore.open({ path, durability: "full" });
    t.after(async () => { await store.close(); cleanup(); });
    await store.migrate();
    const task = oneStepTask();
    const now = Date.now();
    await store.commit({ ...submitBatch(task), nowMs: now - 10 * 86_400_000 });
    const claimed = (await store.commit({ ...submitBatch(task), submissions: [], nowMs: now - 10 * 86_400_000, claim: { limit: 1 } })).claimed;
    await store.commit({ ...submitBatch(task), submissions: [], nowMs: now - 10 * 86_400_000, completions: [{ ...claimed[0]!, outputJson: "2" }] });
    assert.deepEqual(await store.purge({ finishedBeforeMs: now, deadBeforeMs: now, idempotencyBeforeMs: 0 }), { finishedTasks: 1, deadLetters: 0, idempotencyKeys: 0 });
    const db = new Database(path, { readonly: true });
    t.after(() => db.close());
    const tables = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT IN ('schema_migrations', 'counters', 'lease_conflicts', 'nodes', 'ownership_events', 'store_meta', 'settings_history')").all() as { name: string }[]).map((r) => r.name);
    for (const table of tables) assert.equal((db.prepare(`SELECT COUNT(*) AS n FROM ${table}`).get() as { n: number }).n, 0, `${table} is empty`);
    assert.ok(tables.includes("steps") && tables.includes("step_inputs") && tables.includes("step_outputs"));
  });

  test("SqliteStore.open: PRAGMAs read back journal_mode wal and synchronous 2 with durability full", async (t) => {
    const { root, cleanup } = tempRoot();
    const store = SqliteStore.open({ path: join(root, "full.db"), durability: "full" });
    t.after(async () => { await store.close(); cleanup(); });
    const p = store.pragmas();
    assert.equal(p.journal_mode, "wal");
    assert.equal(p.synchronous, 2);
    assert.equal(p.busy_timeout, 15_000);
  });

  test("SqliteStore.open: synchronous is 1 with durability normal, and busyTimeoutMs is applied", async (t) => {
    const { root, cleanup } = tempRoot();
    const store = SqliteStore.open({ path: join(root, "normal.db"), durability: "normal", busyTimeoutMs: 1_234 });
    t.after(async () => { await store.close(); cleanup(); });
    const p = store.pragmas();
    assert.equal(p.journal_mode, "wal");
    assert.equal(p.synchronous, 1);
    assert.equal(p.busy_timeout, 1_234);
  });

  test("SqliteStore.open: a path that cannot be opened fails with a StoreError", (t) => {
    const { root, cleanup } = tempRoot();
    t.after(cleanup);
    assert.throws(() => SqliteStore.open({ path: join(root, "missing-dir", "x.db"), durability: "full" }), { code: ErrorCode.STORE });
  });

  test("SqliteStore.commit: before migrate() it fails with a StoreError", async (t) => {
    const { root, cleanup } = tempRoot();
    const store = SqliteStore.open({ path: join(root, "x.db"), durability: "full" });
    t.after(async () => { await store.close(); cleanup(); });
    await assert.rejects(store.commit(submitBatch(oneStepTask())), { code: ErrorCode.STORE });
  });

  test("SqliteStore.migrate: is idempotent and keeps the data", async (t) => {
    const { root, cleanup } = tempRoot();
    const path = join(root, "x.db");
    const store = SqliteStore.open({ path, durability: "full" });
    t.after(async () => { await store.close(); cleanup(); });
    await store.migrate();
    const task = oneStepTask();
    await store.commit(submitBatch(task));
    await store.migrate();
    await store.migrate();
    assert.equal((await store.getTask(task.taskId))?.taskId, task.taskId);
    assert.deepEqual(appliedMigrations(path), MIGRATIONS.map((m) => m.id));
  });

  test("SqliteStore.migrate: two stores on the same file migrate safely and see each other's commits", async (t) => {
    const { root, cleanup } = tempRoot();
    const path = join(root, "shared.db");
    const a = SqliteStore.open({ path, durability: "full" });
    const b = SqliteStore.open({ path, durability: "full" });
    t.after(async () => { await a.close(); await b.close(); cleanup(); });
    await Promise.all([a.migrate(), b.migrate()]);
    assert.deepEqual(appliedMigrations(path), MIGRATIONS.map((m) => m.id));
    const ta = oneStepTask();
    const tb = oneStepTask();
    await a.commit(submitBatch(ta));
    await b.commit(submitBatch(tb));
    assert.equal((await b.getTask(ta.taskId))?.status, "PENDING");
    assert.equal((await a.getTask(tb.taskId))?.status, "PENDING");
    assert.equal((await a.listTasks({ limit: 10, offset: 0 })).total, 2);
    // Idempotency holds across the two connections.
    const key = "shared-key";
    const first = await a.commit(submitBatch({ ...oneStepTask(), idempotencyKey: key }));
    const second = await b.commit(submitBatch({ ...oneStepTask(), idempotencyKey: key }));
    assert.equal(first.submitted[0]!.created, true);
    assert.deepEqual(second.submitted[0], { ...first.submitted[0]!, created: false });
  });

  test("SqliteStore.migrate: processes migrating one new file at the same time all succeed, each migration applied once", async (t) => {
    const { root, cleanup } = tempRoot();
    t.after(cleanup);
    const path = join(root, "race.db");
    const moduleUrl = pathToFileURL(join(REPO, "dist/src/store/sqlite/store.js")).href;
    const script = `
      const { SqliteStore } = await import(${JSON.stringify(moduleUrl)});
      const store = SqliteStore.open({ path: ${JSON.stringify(path)}, durability: "full" });
      await store.migrate();
      await store.close();
    `;
    const runs = Array.from({ length: 4 }, () => new Promise<{ code: number | null; stderr: string }>((resolve, reject) => {
      const child = spawn(process.execPath, ["--input-type=module", "-e", script], { stdio: ["ignore", "ignore", "pipe"] });
      let stderr = "";
      child.stderr.on("data", (d) => (stderr += d));
      child.on("error", reject);
      child.on("close", (code) => resolve({ code, stderr }));
    }));
    const results = await withDeadline(Promise.all(runs), 30_000, "four migrating processes to exit");
    for (const r of results) assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(appliedMigrations(path), MIGRATIONS.map((m) => m.id));
  });

  test("SqliteStore.close: is idempotent, data survives a reopen, and calls after close fail with a StoreError", async (t) => {
    const { root, cleanup } = tempRoot();
    t.after(cleanup);
    const path = join(root, "x.db");
    const store = SqliteStore.open({ path, durability: "full" });
    await store.migrate();
    const task = oneStepTask();
    await store.commit(submitBatch(task));
    await store.close();
    await store.close();
    await assert.rejects(store.commit(submitBatch(oneStepTask())), { code: ErrorCode.STORE });
    await assert.rejects(store.getTask(task.taskId), { code: ErrorCode.STORE });
    const reopened = SqliteStore.open({ path, durability: "normal" });
    t.after(() => reopened.close());
    await reopened.migrate();
    assert.equal((await reopened.getTask(task.taskId))?.steps[0]!.input, 1);
    assert.equal(reopened.location, `sqlite:${path}`);
  });
});
