import { describe, test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { PostgresStore } from "../../src/store/postgres/store.js";
import { PgBatch, unknownHints } from "../../src/store/postgres/commit.js";
import { parsePgUrl } from "../../src/store/postgres/url.js";
import type { Store } from "../../src/store/store.js";
import pg from "pg";
import { NODE as NODE_A, T0, batch, newTask, ref, storeConformance, type StoreFactory } from "./conformance.js";
import { meshConformance } from "./mesh-conformance.js";
import { PG_URL, pgSchemaUrl, skipPg } from "./pg.js";

if (PG_URL) {
  const pgFactory: StoreFactory = async () => {
    const { url, drop } = pgSchemaUrl();
    const opened: Store[] = [];
    const open = async () => {
      const store = PostgresStore.open({ url, poolSize: 4 });
      opened.push(store);
      await store.migrate();
      return store;
    };
    const store = await open();
    return { store, another: open, async cleanup() { for (const s of opened) await s.close(); await drop(); } };
  };
  storeConformance("postgres", pgFactory);
  meshConformance("postgres", pgFactory);
}

describe("PostgresStore (PostgreSQL only)", { skip: skipPg }, () => {
  test("concurrent first opens of an empty schema migrate it once (advisory lock)", async (t) => {
    const { url, drop } = pgSchemaUrl();
    const stores = Array.from({ length: 4 }, () => PostgresStore.open({ url, poolSize: 2 }));
    t.after(async () => { for (const s of stores) await s.close(); await drop(); });
    await Promise.all(stores.map((s) => s.migrate()));
    const applied = await stores[0]!.appliedMigrations();
    assert.deepEqual(applied, [...new Set(applied)].sort((a, b) => a - b));
    assert.ok(applied.length >= 7);
  });

  test("health reports dead tuples of the hot tables and the oldest open transaction", async (t) => {
    const { url, drop } = pgSchemaUrl();
    const store = PostgresStore.open({ url, poolSize: 2 });
    t.after(async () => { await store.close(); await drop(); });
    await store.migrate();
    const checks = await store.health();
    const byName = new Map(checks.map((c) => [c.name, c]));
    assert.match(byName.get("dead-tuples")!.detail, /steps: \d+ dead \/ \d+ live|no statistics yet/);
    assert.match(byName.get("oldest-transaction")!.detail, /oldest open transaction: \d+ ms/);
    assert.match(byName.get("connections")!.detail, /^\d+ of the server's \d+ connections in use, [1-9]\d* by RelayMesh/);
    assert.ok(checks.every((c) => c.ok), JSON.stringify(checks));
  });
});

describe("PostgresStore errors (PostgreSQL only)", { skip: skipPg }, () => {
  test("a failed operation is counted by operation and SQLSTATE (store_errors_total), at once in this process and in the shared counters after the next commit", async (t) => {
    const { url, drop } = pgSchemaUrl();
    const [a, b] = [PostgresStore.open({ url, poolSize: 2 }), PostgresStore.open({ url, poolSize: 2 })];
    t.after(async () => { await a.close(); await b.close(); await drop(); });
    await a.migrate();
    await b.migrate();
    // A NUL byte is not valid in a PostgreSQL text value: the server refuses the statement (22021).
    await assert.rejects(a.findTaskByIdempotencyKey("bad\u0000key"), (e: Error & { code?: string }) => {
      assert.equal(e.code, "RELAYMESH_ERR_STORE");
      assert.match(e.message, /PostgreSQL findTaskByIdempotencyKey failed .*\(22021\)/);
      return true;
    });
    const name = "store_errors_total:findTaskByIdempotencyKey:22021";
    assert.equal((await a.counters())[name], 1, "counted at once in the process that saw it");
    assert.equal((await b.counters())[name], undefined, "not yet in the shared counters");
    await a.commit({
      nowMs: Date.now(), nodeId: "n", leaseTimeoutMs: 1_000, submissions: [], completions: [], failures: [], renewals: [], releases: [],
      kvWrites: [{ ref: null, namespace: "ns", entries: [{ key: "k", valueJson: "1" }], writer: "op" }], releaseRetriesLimit: 0, reclaimExpiredLimit: 0, claim: null,
    });
    assert.equal((await b.counters())[name], 1, "written to the shared counters by the next commit, for every node's metrics");
    assert.equal((await a.counters())[name], 1, "and counted once");
    assert.equal((await b.opsSnapshot(Date.now())).counters[name], 1);
  });
});

describe("PostgresStore claims (PostgreSQL only)", { skip: skipPg }, () => {
  test("right after a burst (no statistics yet) a claim reads along steps_claim, not every READY step", async (t) => {
    const { url, schema, drop } = pgSchemaUrl();
    const store = PostgresStore.open({ url, poolSize: 2 });
    const client = new pg.Client({ connectionString: PG_URL });
    t.after(async () => { await client.end(); await store.close(); await drop(); });
    await store.migrate();
    await client.connect();
    const blocks = async () => {
      await client.query("BEGIN");
      try {
        const { rows } = await client.query(`EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) SELECT * FROM "${schema}".claim_pick(16, NULL, NULL)`);
        const plan = rows[0]["QUERY PLAN"][0].Plan as { "Actual Rows": number; "Shared Hit Blocks": number; "Shared Read Blocks": number };
        assert.equal(plan["Actual Rows"], 16);
        return plan["Shared Hit Blocks"] + plan["Shared Read Blocks"];
      } finally {
        await client.query("ROLLBACK");
      }
    };
    const submitMany = (n: number) => store.commit(batch(T0, { submissions: Array.from({ length: n }, () => newTask([{ id: "s" }])) }));
    await submitMany(500);
    const small = await blocks();
    for (let i = 0; i < 8; i++) await submitMany(1_000);
    const large = await blocks();
    // A sort of the runnable set reads every READY row's page (17× more rows here); the index walk reads about the same few pages.
    assert.ok(large <= small * 2 + 20, `blocks read by one claim: ${small} with 500 READY steps, ${large} with 8,500`);
  });
});

/** Records the name (or text) of every statement any pg client sends from now until the test ends. */
function spyStatements(t: TestContext): string[] {
  const statements: string[] = [];
  const original = pg.Client.prototype.query;
  t.after(() => { pg.Client.prototype.query = original; });
  pg.Client.prototype.query = function (this: pg.Client, config: unknown, ...rest: unknown[]) {
    const name = typeof config === "string" ? config : (config as { name?: string }).name ?? "?";
    // The NOTIFY hint a submission sends is throttled and sent later, outside any commit.
    if (!name.startsWith("SELECT pg_notify")) statements.push(name);
    return (original as (...a: unknown[]) => unknown).call(this, config, ...rest);
  } as never;
  return statements;
}

/** Two stores on one fresh schema (dropped when the test ends), both migrated. */
async function twoStores(t: TestContext): Promise<[PostgresStore, PostgresStore]> {
  const { url, drop } = pgSchemaUrl();
  const a = PostgresStore.open({ url, poolSize: 2 });
  const b = PostgresStore.open({ url, poolSize: 2 });
  t.after(async () => { await a.close(); await b.close(); await drop(); });
  await a.migrate();
  await b.migrate();
  return [a, b];
}

describe("PostgresStore round trips (PostgreSQL only)", { skip: skipPg }, () => {
  test("a claim of steps this store just left READY goes straight to the claim (no probe first), alone (no transaction), and takes no quota of a class without READY steps; an idle claim only reads; successes that unlock nothing at light load are one statement", async (t) => {
    const { url, drop } = pgSchemaUrl();
    const store = PostgresStore.open({ url, poolSize: 2 });
    t.after(async () => { await store.close(); await drop(); });
    await store.migrate();
    const statements = spyStatements(t);
    const claim = { limit: 10, quotas: [3, 3, 0] as [number, number, number] };
    assert.equal((await store.commit(batch(T0, { claim }))).claimed.length, 0);
    assert.deepEqual(statements, ["c_workProbe"], "an idle claim is one read");
    // Submissions committed on their own (pipelined beside a group commit), then the claim that follows them.
    await store.commit(batch(T0, { submissions: [newTask([{ id: "s" }]), newTask([{ id: "s" }])] }));
    statements.length = 0;
    const claimed = (await store.commit(batch(T0, { claim }))).claimed;
    assert.equal(claimed.length, 2);
    assert.deepEqual(statements, ["c_claimUnrated"], "one class READY, none rate-limited: the claim alone, no transaction");
    // Their successes unlock nothing and nothing else is READY: the completing statement alone, no transaction, no claim.
    assert.deepEqual(claimed.map((c) => c.dependents), [0, 0]);
    const done = (c: (typeof claimed)[number]) => ({ ...ref(c), outputJson: "1", dependents: c.dependents });
    statements.length = 0;
    const r = await store.commit(batch(T0 + 1, { completions: claimed.map(done), claim }));
    assert.deepEqual(statements, ["c_complete"]);
    assert.equal(r.outcomes.filter((o) => o.kind === "succeeded").length, 2);
    assert.deepEqual(r.finishedTasks.map((f) => f.status), ["SUCCESS", "SUCCESS"]);
    // A success that unlocks a dependent is committed with the claim that takes it.
    await store.commit(batch(T0 + 2, { submissions: [newTask([{ id: "a" }, { id: "b", dependsOn: ["a"] }])] }));
    const [a] = (await store.commit(batch(T0 + 3, { claim }))).claimed;
    assert.equal(a!.dependents, 1);
    statements.length = 0;
    const next = await store.commit(batch(T0 + 4, { completions: [done(a!)], claim }));
    assert.deepEqual(statements, ["BEGIN", "c_complete", "c_claim", "COMMIT"]);
    assert.deepEqual(next.claimed.map((c) => c.stepId), ["b"]);
  });

  test("a batch decides by the hints the store saw when it chose to run it without a transaction, not by hints a commit beside it moved since", async (t) => {
    const { url, schema, drop } = pgSchemaUrl();
    const store = PostgresStore.open({ url, poolSize: 2 });
    const base = new URL(url);
    base.search = "";
    const client = new pg.Client({ connectionString: base.toString(), options: `-c search_path="${schema}"` });
    t.after(async () => { await client.end(); await store.close(); await drop(); });
    await store.migrate();
    await client.connect();
    await store.commit(batch(T0, { submissions: [newTask([{ id: "s" }])] }));
    const [c] = (await store.commit(batch(T0, { claim: { limit: 1 } }))).claimed;
    // Seen: nothing waits. Live (moved by another commit meanwhile): every class READY, steps QUEUED, a retry due.
    const seen = { retryAt: null, queued: false, rated: false, ready: [false, false, false] as [boolean, boolean, boolean] };
    const live = { ...unknownHints(), retryAt: T0, ready: [true, true, true] as [boolean, boolean, boolean] };
    const statements = spyStatements(t);
    const r = await new PgBatch(client, T0 + 1, NODE_A, false, live, seen)
      .apply(batch(T0 + 1, { completions: [{ ...ref(c!), outputJson: "1", dependents: 0 }], releaseRetriesLimit: 10, claim: { limit: 8 } }));
    assert.deepEqual(statements, ["c_complete"], "the one statement the store chose, no claim, no admission, no retry release");
    assert.deepEqual(r.finishedTasks.map((f) => f.status), ["SUCCESS"]);
  });

  test("a claim alone never takes a rate-limited step: one another store made READY behind its hints is left to the next claim, which takes its token in a transaction", async (t) => {
    const [a, b] = await twoStores(t);
    const claim = { limit: 10 };
    // Store a learns that nothing waits (an idle probe), then store b submits a rate-limited step a does not know of.
    assert.equal((await a.commit(batch(T0, { claim }))).claimed.length, 0);
    const limited = newTask([{ id: "limited" }]);
    limited.steps[0]!.rateLimit = { name: "api", bucket: "api", perSecond: 1, burst: 1 };
    await b.commit(batch(T0, { submissions: [limited] }));
    await a.commit(batch(T0, { submissions: [newTask([{ id: "plain" }])] }));
    const statements = spyStatements(t);
    const first = await a.commit(batch(T0 + 1, { claim }));
    assert.deepEqual(statements, ["c_claimUnrated"]);
    assert.deepEqual(first.claimed.map((c) => c.stepId), ["plain"], "the claim alone took the plain step only");
    statements.length = 0;
    const second = await a.commit(batch(T0 + 2, { claim }));
    assert.deepEqual(second.claimed.map((c) => c.stepId), ["limited"]);
    assert.equal(statements[0], "BEGIN", `the full claim, in a transaction: ${statements.join(", ")}`);
    assert.ok(statements.includes("c_claim") && statements.at(-1) === "COMMIT");
    // It took the bucket's one token: a second rate-limited step now waits THROTTLED.
    const again = newTask([{ id: "limited-2" }]);
    again.steps[0]!.rateLimit = limited.steps[0]!.rateLimit;
    assert.deepEqual((await a.commit(batch(T0 + 3, { submissions: [again], claim }))).claimed, []);
    assert.equal((await a.getTask(again.taskId))!.steps[0]!.status, "THROTTLED");
  });
});

describe("PostgresStore wake-up hints (PostgreSQL only)", { skip: skipPg }, () => {
  test("a submission committed by one store wakes the others' listeners (NOTIFY, after the commit), not its own", async (t) => {
    const [a, b] = await twoStores(t);
    let woken = 0;
    let self = 0;
    const listening = (store: PostgresStore, count: () => void) => new Promise<void>((resolve) => {
      let first = true;
      // The first call comes when LISTEN is in place (work may have arrived before it).
      store.onWake(() => { if (first) { first = false; resolve(); } else count(); });
    });
    await Promise.all([listening(b, () => woken++), listening(a, () => self++)]);
    await a.commit(batch(T0, { submissions: [newTask([{ id: "s" }])] }));
    const deadline = Date.now() + 10_000;
    while (woken === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.equal(woken, 1, "the other store was woken once");
    // Its own hint went out before the other's arrived; give it the same time to show up.
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(self, 0, "the submitting store is not woken by its own hint");
  });
});

describe("PostgreSQL store URL", () => {
  test("postgres:// and postgresql://, schema default relaymesh, PGPASSWORD, the password never in location", () => {
    const a = parsePgUrl("postgres://alice:s3cret@db.example:6543/prod?schema=tenant_1", {});
    assert.deepEqual([a.host, a.port, a.database, a.user, a.password, a.schema], ["db.example", 6543, "prod", "alice", "s3cret", "tenant_1"]);
    assert.equal(a.location, "postgres://alice@db.example:6543/prod?schema=tenant_1");
    const b = parsePgUrl("postgresql://bob@localhost/app", { PGPASSWORD: "fromenv" });
    assert.deepEqual([b.port, b.schema, b.password], [5432, "relaymesh", "fromenv"]);
    assert.ok(!b.location.includes("fromenv"));
  });

  test("a bad URL is a clear error that never echoes the password", () => {
    for (const [url, pattern] of [
      ["postgres://u:pw@host/db?schema=bad-name", /schema "bad-name"/],
      ["postgres://u:pw@host/", /names no database/],
      ["postgres://u:pw@host/db?sslmode=x", /unknown URL parameter "sslmode"/],
    ] as const) {
      assert.throws(() => parsePgUrl(url, {}), (e: Error & { code?: string }) => {
        assert.equal(e.code, "RELAYMESH_ERR_INVALID_OPTIONS");
        assert.match(e.message, pattern);
        assert.ok(!e.message.includes("pw@"), e.message);
        return true;
      });
    }
  });
});
