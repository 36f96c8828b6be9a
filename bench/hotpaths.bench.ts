/**
 * Micro-benchmarks of the store's hot paths (`npm run bench:micro`), against the SQLite store
 * directly: one group commit that
 *   - claims a batch of READY steps,
 *   - commits a batch of completions (each finishing a one-step task),
 *   - commits completions that unlock dependents (the A of a diamond A→(B,C)→D).
 * Rivals in each Bench: a WAL file at durability full vs normal, batches of 1, 8 and 100.
 * Each rival has its own fresh database file; setup and cleanup run in hooks, outside the timing.
 *
 *   npm run bench:micro -- [--quick] [--json out.json]
 */
import { randomBytes, randomUUID } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { availableParallelism, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { Bench, type Task } from "tinybench";
import { SqliteStore } from "../src/store/sqlite/store.js";
import type { ClaimedStep, CommitBatch, CommitResult, NewTask, StepCompletion } from "../src/store/types.js";
import { PriorityPicker } from "../src/supervisor/picker.js";

const DURABILITIES = ["full", "normal"] as const;
type Durability = (typeof DURABILITIES)[number];
const BATCHES = [1, 8, 100] as const;
const NODE_ID = "bench-node";
/** Long enough that no claimed step's lease expires during a run. */
const LEASE_MS = 3_600_000;
const INPUT_JSON = JSON.stringify("x".repeat(64));

/** A batch that does nothing but what `parts` asks. */
function batchOf(parts: Partial<CommitBatch>): CommitBatch {
  return {
    nowMs: Date.now(), nodeId: NODE_ID, leaseTimeoutMs: LEASE_MS, submissions: [], completions: [], failures: [],
    renewals: [], releases: [], releaseRetriesLimit: 0, reclaimExpiredLimit: 0, claim: null, ...parts,
  };
}

function newTask(steps: { id: string; dependsOn?: string[] }[]): NewTask {
  return {
    taskId: randomUUID(), name: null, priority: 1, idempotencyKey: null, failFast: false,
    traceId: randomBytes(16).toString("hex"), parentSpanId: null,
    steps: steps.map((s) => ({
      stepId: s.id, agent: "echo", inputJson: INPUT_JSON, priority: 1, dependsOn: s.dependsOn ?? [],
      maxAttempts: 3, baseBackoffMs: 1_000, maxBackoffMs: 60_000, timeoutMs: null,
    })),
  };
}
const single = () => newTask([{ id: "main" }]);
const diamond = () => newTask([{ id: "a" }, { id: "b", dependsOn: ["a"] }, { id: "c", dependsOn: ["a"] }, { id: "d", dependsOn: ["b", "c"] }]);

function completionsOf(claimed: readonly ClaimedStep[]): StepCompletion[] {
  return claimed.map((c) => ({ stepKey: c.stepKey, taskId: c.taskId, stepId: c.stepId, leaseEpoch: c.leaseEpoch, outputJson: INPUT_JSON }));
}

function check(ok: boolean, what: string): void {
  if (!ok) throw new Error(`hot-path bench: ${what}`);
}

/** A fresh store per rival, opened in beforeAll and removed in afterAll (of each phase). */
class Fixture {
  store!: SqliteStore;
  readonly picker = new PriorityPicker(10);
  #dir = "";
  constructor(readonly durability: Durability) {}

  async open(): Promise<void> {
    this.#dir = mkdtempSync(join(tmpdir(), "relaymesh-hotpaths-"));
    this.store = SqliteStore.open({ path: join(this.#dir, "relaymesh.db"), durability: this.durability });
    await this.store.migrate();
  }

  async close(): Promise<void> {
    await this.store.close();
    rmSync(this.#dir, { recursive: true, force: true });
  }

  async commit(parts: Partial<CommitBatch>): Promise<CommitResult> {
    return this.store.commit(batchOf(parts));
  }

  /** Submits `tasks` and claims `claim` READY steps in one commit. */
  async submitAndClaim(tasks: NewTask[], claim: number): Promise<ClaimedStep[]> {
    const r = await this.commit({ submissions: tasks, claim: this.picker.plan(claim) });
    check(r.claimed.length === claim, `setup claimed ${r.claimed.length} of ${claim}`);
    return r.claimed;
  }
}

/** Results are kept here so that no measured call can be optimised away. */
let sink = 0;

/** Claim of a batch: `limit` READY steps claimed; released again (untimed) after each iteration. */
function addClaim(bench: Bench, durability: Durability, n: number): void {
  const fx = new Fixture(durability);
  let claimed: ClaimedStep[] = [];
  bench.add(`claim ${n} · ${durability}`, async () => {
    const r = await fx.commit({ claim: fx.picker.plan(n) });
    check(r.claimed.length === n, `claimed ${r.claimed.length} of ${n}`);
    claimed = r.claimed;
    sink += r.claimed.length;
  }, {
    beforeAll: async () => {
      await fx.open();
      // A backlog several times the batch, so each claim searches a realistic READY set.
      await fx.commit({ submissions: Array.from({ length: Math.max(1_000, 4 * n) }, single) });
    },
    afterEach: async () => {
      const r = await fx.commit({ releases: claimed });
      check(r.released === claimed.length, `released ${r.released} of ${claimed.length}`);
    },
    afterAll: () => fx.close(),
  });
}

/** Commit of completions: `n` RUNNING one-step tasks (claimed untimed) completed, each task finishing. */
function addComplete(bench: Bench, durability: Durability, n: number): void {
  const fx = new Fixture(durability);
  let completions: StepCompletion[] = [];
  bench.add(`complete ${n} · ${durability}`, async () => {
    const r = await fx.commit({ completions });
    check(r.outcomes.length === n && r.finishedTasks.length === n, `completed ${r.outcomes.length}, finished ${r.finishedTasks.length} of ${n}`);
    sink += r.finishedTasks.length;
  }, {
    beforeAll: () => fx.open(),
    beforeEach: async () => { completions = completionsOf(await fx.submitAndClaim(Array.from({ length: n }, single), n)); },
    afterAll: () => fx.close(),
  });
}

/** DAG unlock: completing `n` diamond roots makes 2n dependents READY (claimed untimed afterwards, to check and clear them). */
function addUnlock(bench: Bench, durability: Durability, n: number): void {
  const fx = new Fixture(durability);
  let completions: StepCompletion[] = [];
  bench.add(`unlock ${n} · ${durability}`, async () => {
    const r = await fx.commit({ completions });
    check(r.outcomes.length === n && r.finishedTasks.length === 0, `completed ${r.outcomes.length} of ${n} roots`);
    sink += r.outcomes.length;
  }, {
    beforeAll: () => fx.open(),
    beforeEach: async () => { completions = completionsOf(await fx.submitAndClaim(Array.from({ length: n }, diamond), n)); },
    // Every root must have made its two dependents READY; claiming them also keeps the next iteration's claim to roots.
    afterEach: async () => { await fx.submitAndClaim([], 2 * n); },
    afterAll: () => fx.close(),
  });
}

interface Row { bench: string; task: string; batch: number; meanMs: number; p99Ms: number; opsPerSec: number; stepsPerSec: number; samples: number }

function rowsOf(bench: Bench): Row[] {
  return bench.tasks.map((t: Task) => {
    const r = t.result;
    if (r.state !== "completed") throw new Error(`task "${t.name}" ended ${r.state}${"error" in r ? `: ${r.error.message}` : ""}`);
    const batch = Number(/ (\d+) · /.exec(t.name)![1]);
    return {
      bench: bench.name ?? "", task: t.name, batch, meanMs: r.latency.mean, p99Ms: r.latency.p99,
      opsPerSec: r.throughput.mean, stepsPerSec: (batch * 1000) / r.latency.mean, samples: r.latency.samplesCount,
    };
  });
}

async function main(): Promise<void> {
  const { values: args } = parseArgs({ options: { quick: { type: "boolean", default: false }, json: { type: "string" } }, strict: true });
  const cores = availableParallelism();
  const load = loadavg();
  console.log(`store hot paths (SQLite, WAL file) · ${cores} cores · node ${process.version} · load average ${load.map((l) => l.toFixed(2)).join(" ")}`);
  if (load[0]! >= cores * 0.5) console.log(`WARNING: the 1-minute load average (${load[0]!.toFixed(2)}) is at least half the core count: figures will be noisy`);
  const timing = args.quick ? { time: 200, warmupTime: 50, iterations: 16 } : { time: 1_000, warmupTime: 250 };

  const rows: Row[] = [];
  for (const [name, add] of [["claim", addClaim], ["complete", addComplete], ["unlock", addUnlock]] as const) {
    const bench = new Bench({ name, throws: true, ...timing });
    // Durabilities alternate, so slow drift of the machine spreads over both rivals.
    for (const n of BATCHES) for (const d of DURABILITIES) add(bench, d, n);
    await bench.run();
    console.log(`\n${name}: one group commit (ops/s = commits/s; steps/s = batch × commits/s)`);
    console.table(bench.table());
    const benchRows = rowsOf(bench);
    for (const r of benchRows) console.log(`  ${r.task.padEnd(22)} ${Math.round(r.stepsPerSec).toLocaleString("en-US").padStart(9)} steps/s`);
    rows.push(...benchRows);
  }
  check(sink > 0, "no result was consumed");
  if (args.json) {
    writeFileSync(args.json, `${JSON.stringify({ startedAt: new Date().toISOString(), cores, node: process.version, loadavg: load, rows }, null, 2)}\n`);
    console.log(`\nreport written to ${args.json}`);
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.stack : error);
  process.exitCode = 1;
});
