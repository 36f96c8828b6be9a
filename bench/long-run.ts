/**
 * Long run (`npm run bench:long`): memory and store size over a million drained steps.
 *
 *   npm run bench:long -- [--tasks 1000000] [--json out.json]
 *
 * One process submits single echo tasks while working (8 submissions in flight, concurrency 8,
 * SQLite at durability full) until `--tasks` have finished. At each checkpoint (10%, 25%, 50%,
 * 100%) it samples the resident set and the main thread's JS heap after a full collection, and
 * the size of the store (database file plus WAL). Then `purge` removes every finished task and a
 * second run of 10% of the tasks shows whether the freed pages are reused (the file should not
 * grow) rather than the file growing on.
 *
 * Needs `node --expose-gc` (the npm script passes it).
 */
import { mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { runBenchmark } from "../src/bench/runner.js";
import { RelayMesh } from "../src/index.js";

interface Sample { done: number; rssMb: number; heapUsedMb: number; storeMb: number }

const { values: args } = parseArgs({
  options: { tasks: { type: "string", default: "1000000" }, json: { type: "string" }, help: { type: "boolean", default: false } },
  strict: true,
});
if (args.help) {
  console.log("usage: npm run bench:long -- [--tasks 1000000] [--json out.json]");
  process.exit(0);
}
const total = Number(args.tasks);
if (!Number.isInteger(total) || total < 1_000) throw new Error(`--tasks: expected an integer of at least 1000, got ${args.tasks}`);
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error("bench/long-run needs node --expose-gc (use npm run bench:long)");

const root = mkdtempSync(join(tmpdir(), "relaymesh-long-"));
const dbPath = join(root, "relaymesh.db");
const storeMb = () => [dbPath, `${dbPath}-wal`].reduce((sum, p) => sum + (statSync(p, { throwIfNoEntry: false })?.size ?? 0), 0) / 2 ** 20;
const sample = (done: number): Sample => {
  gc();
  const m = process.memoryUsage();
  return { done, rssMb: m.rss / 2 ** 20, heapUsedMb: m.heapUsed / 2 ** 20, storeMb: storeMb() };
};
const show = (label: string, s: Sample) =>
  console.log(`${label.padEnd(26)} RSS ${s.rssMb.toFixed(1).padStart(7)} MB   heap ${s.heapUsedMb.toFixed(1).padStart(6)} MB   store ${s.storeMb.toFixed(1).padStart(8)} MB`);

try {
  console.log(`RelayMesh long run: ${total.toLocaleString("en-US")} single echo tasks, one process, SQLite (durability full); load average ${loadavg().map((l) => l.toFixed(2)).join(" ")}`);
  const checkpoints = new Set([0.1, 0.25, 0.5, 1].map((f) => Math.round(total * f)));
  const samples: Sample[] = [];
  const started = performance.now();
  const run = await runBenchmark({
    root, tasks: total, shape: "single", mode: "concurrent", concurrency: 8, inputSize: 64, warmupTasks: 200,
    onProgress: (done) => {
      if (!checkpoints.has(done)) return;
      const s = sample(done);
      samples.push(s);
      show(`after ${done.toLocaleString("en-US")}`, s);
    },
  });
  const seconds = (performance.now() - started) / 1000;
  console.log(`drained in ${seconds.toFixed(0)} s (${run.throughputPerSec.toFixed(0)} tasks/s), ${run.notSucceeded} not SUCCESS`);

  const mesh = await RelayMesh.open({ root, work: false });
  const purged = await mesh.purge({ doneRetentionDays: 0, deadRetentionDays: 0, idempotencyTtlDays: 0 });
  await mesh.close();
  const afterPurge = sample(total);
  show("after purge", afterPurge);
  const again = Math.round(total / 10);
  await runBenchmark({ root, tasks: again, shape: "single", mode: "concurrent", concurrency: 8, inputSize: 64, warmupTasks: 0 });
  const afterAgain = sample(total + again);
  show(`after ${again.toLocaleString("en-US")} more`, afterAgain);

  const first = samples[0]!;
  const last = samples[samples.length - 1]!;
  const perTask = samples.slice(1).map((s, i) => ((s.storeMb - samples[i]!.storeMb) * 2 ** 20) / (s.done - samples[i]!.done));
  const rssRatio = last.rssMb / first.rssMb;
  console.log(`\nRSS ${first.done.toLocaleString("en-US")} → ${last.done.toLocaleString("en-US")}: ×${rssRatio.toFixed(3)} (target ≤ 1.10: ${rssRatio <= 1.1 ? "met" : "NOT MET"})`);
  console.log(`store bytes per task between checkpoints: ${perTask.map((b) => b.toFixed(0)).join(", ")} (linear growth: about equal)`);
  console.log(`purge removed ${JSON.stringify(purged)}; the store then grew by ${(afterAgain.storeMb - afterPurge.storeMb).toFixed(1)} MB for ${again.toLocaleString("en-US")} new tasks` +
    ` (${(((afterAgain.storeMb - afterPurge.storeMb) * 2 ** 20) / again).toFixed(0)} bytes per task; 0 when freed pages are reused)`);
  if (args.json) {
    writeFileSync(args.json, `${JSON.stringify({ startedAt: new Date().toISOString(), total, seconds, samples, afterPurge, afterAgain, purged, rssRatio, perTask }, null, 2)}\n`);
  }
} finally {
  rmSync(root, { recursive: true, force: true });
}
