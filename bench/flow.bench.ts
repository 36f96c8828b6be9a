/**
 * What flow control costs the claim path (`npm run bench:flow`), against the SQLite store:
 *   - the claim of one READY step (its submission before and completion after are not timed),
 *     and an idle claim (nothing READY), with and without 100,000 SCHEDULED (delayed) steps
 *     waiting in the store: they must not slow claims;
 *   - a flow tick as a working node runs it every poll interval (the deadlines due, then
 *     src/schedule/scheduler.ts's schedule tick) with 1,000 schedules none of which is due: the SQL
 *     statements it runs are counted from the connection's trace and each one's query plan is
 *     printed (one indexed read for the schedules, not one per schedule).
 * Each rival has its own database file; seeding runs before the timing.
 *
 * The rivals of each pair are timed alternately, sample by sample, so that load from other work
 * on a shared machine falls on both alike; compare their ratio rather than absolute figures.
 *
 *   npm run bench:flow -- [--quick] [--durability full|normal] [--json out.json]
 */
import { randomBytes, randomUUID } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { availableParallelism, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import Database from "better-sqlite3";
import { scheduleTick } from "../src/schedule/scheduler.js";
import { SqliteStore } from "../src/store/sqlite/store.js";
import type { ClaimedStep, CommitBatch, NewTask } from "../src/store/types.js";

const { values: args } = parseArgs({ options: { quick: { type: "boolean" }, json: { type: "string" }, durability: { type: "string", default: "full" } } });
if (args.durability !== "full" && args.durability !== "normal") throw new Error(`--durability: full or normal, got "${args.durability}"`);
const DURABILITY: "full" | "normal" = args.durability;
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
    this.store = SqliteStore.open({ path: this.path, durability: DURABILITY, trace: (sql) => this.tracing?.push(sql) });
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
  /** Timed: a working node's flow tick (deadlines due, then schedules due); nothing is due, so it must do nothing. */
  async tick(): Promise<void> {
    if ((await this.store.dueDeadlines(Date.now(), 100)).length !== 0) throw new Error("flow bench: no deadline is due");
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
console.log(`\nOne flow tick with ${SCHEDULES} schedules, none due: ${tickStatements.length} SQL statement(s)`);
for (const p of plans) console.log(`  ${p.sql}\n    plan: ${p.plan.join("; ")}`);

/**
 * Times `a` and `b` alternately (which goes first alternates too), `n` samples each, so load from
 * other work on the machine falls on both alike. `before`/`after` run untimed around each sample.
 */
interface Rival { name: string; run(): Promise<void>; before?(): Promise<void>; after?(): Promise<void> }
async function interleaved(a: Rival, b: Rival, n: number): Promise<{ name: string; samples: number[] }[]> {
  const samples: [number[], number[]] = [[], []];
  const once = async (r: Rival, into: number[]) => {
    await r.before?.();
    const t0 = performance.now();
    await r.run();
    into.push(performance.now() - t0);
    await r.after?.();
  };
  for (let i = 0; i < n; i++) {
    if (i % 2 === 0) { await once(a, samples[0]); await once(b, samples[1]); } else { await once(b, samples[1]); await once(a, samples[0]); }
  }
  return [{ name: a.name, samples: samples[0] }, { name: b.name, samples: samples[1] }];
}

const quantile = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;
const N = args.quick ? 300 : 3_000;
const delayed = `${DELAYED.toLocaleString("en")} delayed steps waiting`;
const claimOf = (f: Fixture, name: string): Rival => ({ name, before: () => f.submit(), run: () => f.claim(), after: () => f.complete() });
const pairs = [
  await interleaved(claimOf(plain, "claim one READY step, no delayed steps"), claimOf(busy, `claim one READY step, ${delayed}`), N),
  await interleaved({ name: "idle claim (nothing READY), no delayed steps", run: () => plain.idleClaim() },
    { name: `idle claim (nothing READY), ${delayed}`, run: () => busy.idleClaim() }, N * 10),
  await interleaved({ name: "flow tick, no schedules", run: () => plain.tick() }, { name: `flow tick, ${SCHEDULES} schedules none due`, run: () => busy.tick() }, N * 10),
];
console.log(`\n(durability ${DURABILITY}; each pair timed alternately)`);
const rows = pairs.flat().map(({ name, samples }) => {
  const sorted = [...samples].sort((x, y) => x - y);
  return { name, samples: sorted.length, meanMs: sorted.reduce((sum, x) => sum + x, 0) / sorted.length, p50Ms: quantile(sorted, 0.5), p99Ms: quantile(sorted, 0.99) };
});
for (const r of rows) console.log(`${r.name}: p50 ${r.p50Ms.toFixed(3)} ms, p99 ${r.p99Ms.toFixed(3)} ms (mean ${r.meanMs.toFixed(3)} ms, ${r.samples} samples)`);
const ratios = pairs.map(([without, withThem]) => {
  const [a, b] = [rows.find((r) => r.name === without!.name)!, rows.find((r) => r.name === withThem!.name)!];
  return `${b.name}: p50 ×${(b.p50Ms / a.p50Ms).toFixed(2)}, p99 ×${(b.p99Ms / a.p99Ms).toFixed(2)}`;
});
console.log(`\nagainst the empty store:\n  ${ratios.join("\n  ")}`);
const loadEnd = load();
console.log(`load average at start ${loadStart}, at end ${loadEnd}`);
if (args.json) writeFileSync(args.json, `${JSON.stringify({ delayed: DELAYED, schedules: SCHEDULES, durability: DURABILITY, loadStart, loadEnd, tick: { statements: plans.length, plans }, rows }, null, 2)}\n`);
await plain.close();
await busy.close();
