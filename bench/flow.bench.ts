/**
 * What flow control costs the claim path (`npm run bench:flow`), against the SQLite store:
 *   - the claim of one READY step (its submission before and completion after are not timed),
 *     and an idle claim (nothing READY), with and without 100,000 SCHEDULED (delayed) steps
 *     waiting in the store: they must not slow claims;
 *   - a schedule tick (src/schedule/scheduler.ts, as a working node runs it every poll interval)
 *     with 1,000 schedules none of which is due: the SQL statements it runs are counted from the
 *     connection's trace and each one's query plan is printed (one indexed read, not one per schedule).
 * Each rival has its own database file; seeding runs before the timing.
 *
 *   npm run bench:flow -- [--quick] [--json out.json]
 */
import { randomBytes, randomUUID } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { availableParallelism, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import Database from "better-sqlite3";
import { Bench } from "tinybench";
import { scheduleTick } from "../src/schedule/scheduler.js";
import { SqliteStore } from "../src/store/sqlite/store.js";
import type { ClaimedStep, CommitBatch, NewTask } from "../src/store/types.js";

const { values: args } = parseArgs({ options: { quick: { type: "boolean" }, json: { type: "string" } } });
const DELAYED = args.quick ? 10_000 : 100_000;
const SCHEDULES = 1_000;
const NODE = "bench";

function batchOf(parts: Partial<CommitBatch>): CommitBatch {
  return {
    nowMs: Date.now(), nodeId: NODE, leaseTimeoutMs: 3_600_000, submissions: [], completions: [], failures: [], renewals: [], releases: [],
    releaseRetriesLimit: 1_000, reclaimExpiredLimit: 0, claim: null, ...parts,
  };
}

function task(notBeforeMs: number | null): NewTask {
  return {
    taskId: randomUUID(), name: null, priority: 1, idempotencyKey: null, failFast: false, traceId: randomBytes(16).toString("hex"), parentSpanId: null,
    steps: [{ stepId: "main", agent: "echo", inputJson: "1", priority: 1, dependsOn: [], maxAttempts: 3, baseBackoffMs: 1_000, maxBackoffMs: 60_000, timeoutMs: null, notBeforeMs }],
  };
}

class Fixture {
  store!: SqliteStore;
  path = "";
  /** SQL statements the store's connection ran while `tracing` is set. */
  tracing: string[] | null = null;
  #dir = "";
  #claimed: ClaimedStep | null = null;
  constructor(readonly delayed: number, readonly schedules: number) {}
  async open(): Promise<void> {
    this.#dir = mkdtempSync(join(tmpdir(), "relaymesh-flow-bench-"));
    this.path = join(this.#dir, "relaymesh.db");
    this.store = SqliteStore.open({ path: this.path, durability: "full", trace: (sql) => this.tracing?.push(sql) });
    await this.store.migrate();
    const far = Date.now() + 30 * 86_400_000;
    for (let i = 0; i < this.delayed; i += 1_000) {
      await this.store.commit(batchOf({ submissions: Array.from({ length: Math.min(1_000, this.delayed - i) }, (_, j) => task(far + i + j)) }));
    }
    for (let i = 0; i < this.schedules; i++) {
      await this.store.putSchedule({
        name: `s${i}`, cron: "0 0 1 1 *", timezone: null, spec: {}, overlap: "skip", catchUp: "none", catchUpWindowMs: null, jitterMs: 0,
        paused: false, nextSlotMs: far, nextAtMs: far,
      }, Date.now());
    }
  }
  /** Untimed: one READY step to claim. */
  async submit(): Promise<void> {
    await this.store.commit(batchOf({ submissions: [task(null)] }));
  }
  /** Timed: the claim of that step (one group commit). */
  async claim(): Promise<void> {
    const claimed = (await this.store.commit(batchOf({ claim: { limit: 1 } }))).claimed;
    if (claimed.length !== 1) throw new Error(`flow bench: claimed ${claimed.length}, expected 1`);
    this.#claimed = claimed[0]!;
  }
  /** Untimed: completes the claimed step, so the next claim finds the same store. */
  async complete(): Promise<void> {
    const c = this.#claimed!;
    this.#claimed = null;
    await this.store.commit(batchOf({ completions: [{ stepKey: c.stepKey, taskId: c.taskId, stepId: c.stepId, leaseEpoch: c.leaseEpoch, outputJson: "1" }] }));
  }
  /** Timed: a claim that finds nothing READY (a polling node's idle commit). */
  async idleClaim(): Promise<void> {
    const claimed = (await this.store.commit(batchOf({ claim: { limit: 8 } }))).claimed;
    if (claimed.length !== 0) throw new Error(`flow bench: an idle claim claimed ${claimed.length}`);
  }
  /** Timed: one schedule tick at `nowMs`; nothing is due, so it must fire nothing. */
  async tick(): Promise<void> {
    const fired = await scheduleTick({
      store: this.store, nodeId: NODE, nowMs: Date.now(),
      build: () => { throw new Error("flow bench: no schedule is due"); },
      fire: (f) => this.store.fireSchedule(f),
      cancelPrevious: async () => {},
      onError: (error) => { throw error; },
    });
    if (fired.length !== 0) throw new Error(`flow bench: a tick fired ${fired.length}`);
  }
  async close(): Promise<void> {
    await this.store.close();
    rmSync(this.#dir, { recursive: true, force: true });
  }
}

const load = () => loadavg().map((l) => l.toFixed(2)).join(" ");
const plain = new Fixture(0, 0);
const busy = new Fixture(DELAYED, SCHEDULES);
const loadStart = load();
console.log(`load average ${loadStart} on ${availableParallelism()} cores; seeding ${DELAYED.toLocaleString("en")} delayed tasks and ${SCHEDULES} schedules…`);
await plain.open();
await busy.open();

// What one tick runs against 1,000 schedules: every statement, with its query plan.
busy.tracing = [];
await busy.tick();
const tickStatements = busy.tracing;
busy.tracing = null;
const reader = new Database(busy.path, { readonly: true });
const plans = tickStatements.map((sql) => ({
  sql: sql.replace(/\s+/g, " ").trim(),
  plan: (reader.prepare(`EXPLAIN QUERY PLAN ${sql}`).all() as { detail: string }[]).map((r) => r.detail),
}));
reader.close();
console.log(`\nOne schedule tick with ${SCHEDULES} schedules, none due: ${tickStatements.length} SQL statement(s)`);
for (const p of plans) console.log(`  ${p.sql}\n    plan: ${p.plan.join("; ")}`);

const bench = new Bench({ time: args.quick ? 500 : 3_000, warmupTime: 200, throws: true });
const claimHooks = (f: Fixture) => ({ beforeEach: () => f.submit(), afterEach: () => f.complete() });
const delayed = `${DELAYED.toLocaleString("en")} delayed steps waiting`;
bench
  .add("claim one READY step, no delayed steps", () => plain.claim(), claimHooks(plain))
  .add(`claim one READY step, ${delayed}`, () => busy.claim(), claimHooks(busy))
  .add("idle claim (nothing READY), no delayed steps", () => plain.idleClaim())
  .add(`idle claim (nothing READY), ${delayed}`, () => busy.idleClaim())
  .add("schedule tick, no schedules", () => plain.tick())
  .add(`schedule tick, ${SCHEDULES} schedules none due`, () => busy.tick());
await bench.run();
console.table(bench.table());
const rows = bench.tasks.map((t) => {
  const r = t.result;
  if (r.state !== "completed") throw new Error(`task "${t.name}" ended ${r.state}`);
  return { name: t.name, samples: r.latency.samplesCount, meanMs: r.latency.mean, p50Ms: r.latency.p50!, p99Ms: r.latency.p99! };
});
for (const r of rows) console.log(`${r.name}: p50 ${r.p50Ms.toFixed(3)} ms, p99 ${r.p99Ms.toFixed(3)} ms (mean ${r.meanMs.toFixed(3)} ms, ${r.samples} samples)`);
const ratio = (a: string, b: string) => rows.find((r) => r.name.startsWith(b) && r.name.includes("delayed steps waiting"))!.p99Ms / rows.find((r) => r.name.startsWith(a))!.p99Ms;
console.log(`\nclaim p99 with/without ${delayed}: ×${ratio("claim one READY step, no", "claim one READY step").toFixed(2)}; ` +
  `idle claim p99: ×${ratio("idle claim (nothing READY), no", "idle claim").toFixed(2)}`);
const loadEnd = load();
console.log(`load average at start ${loadStart}, at end ${loadEnd}`);
if (args.json) writeFileSync(args.json, `${JSON.stringify({ delayed: DELAYED, schedules: SCHEDULES, loadStart, loadEnd, tick: { statements: plans.length, plans }, rows }, null, 2)}\n`);
await plain.close();
await busy.close();
