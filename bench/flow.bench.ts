/**
 * What flow control costs the claim path (`npm run bench:flow`), against the SQLite store:
 *   - submit, claim and complete one READY step, with and without 100,000 SCHEDULED (delayed)
 *     steps waiting in the store (they must not slow claims);
 *   - the due-schedule read of a tick, with 1,000 schedules none of which is due (one indexed read).
 * Each rival has its own database file; seeding runs in beforeAll, outside the timing.
 *
 *   npm run bench:flow -- [--quick] [--json out.json]
 */
import { randomBytes, randomUUID } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { availableParallelism, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { Bench } from "tinybench";
import { SqliteStore } from "../src/store/sqlite/store.js";
import type { CommitBatch, NewTask } from "../src/store/types.js";

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
  #dir = "";
  constructor(readonly delayed: number, readonly schedules: number) {}
  async open(): Promise<void> {
    this.#dir = mkdtempSync(join(tmpdir(), "relaymesh-flow-bench-"));
    this.store = SqliteStore.open({ path: join(this.#dir, "relaymesh.db"), durability: "full" });
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
  /** One READY step submitted, claimed and completed: three group commits. */
  async cycle(): Promise<void> {
    await this.store.commit(batchOf({ submissions: [task(null)] }));
    const claimed = (await this.store.commit(batchOf({ claim: { limit: 1 } }))).claimed;
    if (claimed.length !== 1) throw new Error(`flow bench: claimed ${claimed.length}, expected 1`);
    const c = claimed[0]!;
    await this.store.commit(batchOf({ completions: [{ stepKey: c.stepKey, taskId: c.taskId, stepId: c.stepId, leaseEpoch: c.leaseEpoch, outputJson: "1" }] }));
  }
  async close(): Promise<void> {
    await this.store.close();
    rmSync(this.#dir, { recursive: true, force: true });
  }
}

const plain = new Fixture(0, 0);
const busy = new Fixture(DELAYED, SCHEDULES);
console.log(`load average ${loadavg().map((l) => l.toFixed(2)).join(" ")} on ${availableParallelism()} cores; seeding ${DELAYED} delayed tasks and ${SCHEDULES} schedules…`);
await plain.open();
await busy.open();
const bench = new Bench({ time: args.quick ? 500 : 3_000, warmupTime: 200, throws: true });
bench
  .add("submit+claim+complete, empty store", () => plain.cycle())
  .add(`submit+claim+complete, ${DELAYED.toLocaleString("en")} delayed steps waiting`, () => busy.cycle())
  .add("due schedules read, no schedules", async () => { await plain.store.dueSchedules(Date.now(), 100); })
  .add(`due schedules read, ${SCHEDULES} schedules none due`, async () => {
    if ((await busy.store.dueSchedules(Date.now(), 100)).length !== 0) throw new Error("flow bench: nothing should be due");
  });
await bench.run();
console.table(bench.table());
const rows = bench.tasks.map((t) => {
  const r = t.result;
  if (r.state !== "completed") throw new Error(`task "${t.name}" ended ${r.state}`);
  return { name: t.name, meanMs: r.latency.mean, p99Ms: r.latency.p99, opsPerSec: r.throughput.mean };
});
for (const r of rows) console.log(`${r.name}: mean ${r.meanMs.toFixed(3)} ms, p99 ${r.p99Ms!.toFixed(3)} ms`);
if (args.json) writeFileSync(args.json, JSON.stringify({ delayed: DELAYED, schedules: SCHEDULES, rows }, null, 2));
await plain.close();
await busy.close();
