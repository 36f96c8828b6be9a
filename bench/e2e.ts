/**
 * End-to-end benchmark (`npm run bench`): the workloads below through the public API, each run
 * in a fresh temporary root, several times, reported as median and range next to the targets.
 *
 *   npm run bench -- [--quick] [--only W1,W2,W3,LIGHT,MEMORY] [--json out.json] [--store URL]
 *
 * `--store postgres://…` runs every workload on PostgreSQL, each run in a scratch schema of its
 * own (`<schema>_bench_…`, dropped after the run); without it, SQLite in the run's root.
 *
 * MEMORY runs in a child process started with --expose-gc, so that its resident memory is not
 * that of the earlier workloads and both samples are taken after a full collection.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { arch, availableParallelism, cpus, loadavg, platform, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { runBenchmark, type BenchmarkOptions, type BenchmarkReport } from "../src/bench/runner.js";
import { median, range } from "../src/bench/stats.js";
import { redact } from "../src/store/open.js";
import { scratchStoreFor } from "../src/store/scratch.js";

const CONCURRENCY = 8;
/** Echo tasks run before measuring in `concurrent` workloads, so worker-thread start-up is not measured. */
const WARMUP_TASKS = 200;

interface Target { op: ">=" | "<="; value: number; text: string }
interface Figure { key: string; label: string; digits: number; target?: Target }
/** One run of a workload: its figures, the tasks that did not end SUCCESS, and the raw report(s). */
interface RunResult { values: Record<string, number>; notSucceeded: number; raw: unknown }
interface Workload {
  id: string;
  title: string;
  figures: Figure[];
  /** `store`: the run's scratch store (undefined: SQLite in the root). */
  once(root: string, store: string | undefined): Promise<RunResult>;
}
interface Sizes { runs: number; w1: number; w2: number; w3: number; lightRate: number; lightSeconds: number; memSample: number; memTotal: number }

const FULL: Sizes = { runs: 3, w1: 10_000, w2: 1_000, w3: 500, lightRate: 200, lightSeconds: 10, memSample: 10_000, memTotal: 100_000 };
const QUICK: Sizes = { runs: 1, w1: 1_000, w2: 200, w3: 100, lightRate: 200, lightSeconds: 2, memSample: 2_000, memTotal: 20_000 };

function workloads(z: Sizes): Workload[] {
  const base = { concurrency: CONCURRENCY, inputSize: 64 } satisfies Partial<BenchmarkOptions>;
  const latency = (what: string, p50Target?: Target, p99Target?: Target): Figure[] => [
    { key: "p50", label: `p50 ${what} (ms)`, digits: 1, ...(p50Target ? { target: p50Target } : {}) },
    { key: "p99", label: `p99 ${what} (ms)`, digits: 1, ...(p99Target ? { target: p99Target } : {}) },
  ];
  const fromReport = (r: BenchmarkReport, extra: Record<string, number>): RunResult => ({
    values: { ...extra, p50: r.latencyMs.p50, p99: r.latencyMs.p99 }, notSucceeded: r.notSucceeded, raw: r,
  });
  return [
    {
      id: "W1",
      title: `${fmt(z.w1)} single echo tasks, 64 B input, enqueue-then-drain`,
      figures: [
        { key: "enqueue", label: "enqueue/s", digits: 0 },
        { key: "drain", label: "drain steps/s", digits: 0, target: { op: ">=", value: 15_000, text: "≥ 15,000" } },
        ...latency("enqueue→done"),
      ],
      async once(root, store) {
        const r = await runBenchmark({ ...base, root, ...(store ? { store } : {}), tasks: z.w1, shape: "single", mode: "enqueue-then-drain" });
        return fromReport(r, { enqueue: r.enqueuePerSec, drain: r.stepsPerSec });
      },
    },
    {
      id: "W2",
      title: `${fmt(z.w2)} chains A→B→C, submitted while working`,
      figures: [{ key: "wps", label: "chains/s", digits: 0, target: { op: ">=", value: 3_000, text: "≥ 3,000" } }, ...latency("submit→done")],
      async once(root, store) {
        const r = await runBenchmark({ ...base, root, ...(store ? { store } : {}), tasks: z.w2, shape: "chain", mode: "concurrent", warmupTasks: WARMUP_TASKS });
        return fromReport(r, { wps: r.throughputPerSec });
      },
    },
    {
      id: "W3",
      title: `${fmt(z.w3)} diamonds A→(B,C)→D, submitted while working`,
      figures: [{ key: "wps", label: "diamonds/s", digits: 0, target: { op: ">=", value: 2_000, text: "≥ 2,000" } }, ...latency("submit→done")],
      async once(root, store) {
        const r = await runBenchmark({ ...base, root, ...(store ? { store } : {}), tasks: z.w3, shape: "diamond", mode: "concurrent", warmupTasks: WARMUP_TASKS });
        return fromReport(r, { wps: r.throughputPerSec });
      },
    },
    {
      id: "LIGHT",
      title: `light load: ${z.lightRate} single tasks/s offered for ${z.lightSeconds} s`,
      figures: [
        { key: "achieved", label: "achieved tasks/s", digits: 0 },
        ...latency("submit→done", undefined, { op: "<=", value: 10, text: "≤ 10" }),
      ],
      async once(root, store) {
        const r = await runBenchmark({
          ...base, root, ...(store ? { store } : {}), tasks: z.lightRate * z.lightSeconds, shape: "single", mode: "concurrent",
          rateLimitPerSec: z.lightRate, warmupTasks: WARMUP_TASKS,
        });
        return fromReport(r, { achieved: r.throughputPerSec });
      },
    },
    {
      id: "MEMORY",
      title: `memory: resident set after ${fmt(z.memSample)} vs after ${fmt(z.memTotal)} single tasks, one process`,
      figures: [
        { key: "rssSample", label: `RSS after ${fmt(z.memSample)} (MB)`, digits: 1 },
        { key: "rssTotal", label: `RSS after ${fmt(z.memTotal)} (MB)`, digits: 1 },
        { key: "ratio", label: "RSS ratio", digits: 3, target: { op: "<=", value: 1.2, text: "≤ 1.20" } },
        { key: "heapSample", label: `main-thread JS heap after ${fmt(z.memSample)} (MB)`, digits: 1 },
        { key: "heapTotal", label: `main-thread JS heap after ${fmt(z.memTotal)} (MB)`, digits: 1 },
      ],
      once: (root) => memoryInChild(root, z.memSample, z.memTotal),
    },
  ];
}

/** The MEMORY workload, in a fresh `node --expose-gc` running this file with --memory-child. */
async function memoryInChild(root: string, sampleAt: number, total: number): Promise<RunResult> {
  const args = ["--expose-gc", fileURLToPath(import.meta.url), "--memory-child", "--root", root, "--tasks", String(total), "--sample-at", String(sampleAt)];
  const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "inherit"] });
  let out = "";
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => { out += chunk; });
  const code = await new Promise<number | null>((resolve, reject) => { child.on("error", reject); child.on("close", resolve); });
  if (code !== 0) throw new Error(`memory child exited with code ${code}`);
  const result = JSON.parse(out.trim().split("\n").pop()!) as { sample: MemorySample; total: MemorySample; report: BenchmarkReport };
  return {
    values: {
      rssSample: result.sample.rssMb, rssTotal: result.total.rssMb, ratio: result.total.rssMb / result.sample.rssMb,
      heapSample: result.sample.heapUsedMb, heapTotal: result.total.heapUsedMb,
    },
    notSucceeded: result.report.notSucceeded, raw: result,
  };
}

/** Taken after a full collection of the main thread (worker threads and SQLite are in RSS only). */
interface MemorySample { rssMb: number; heapUsedMb: number }

async function memoryChild(root: string, total: number, sampleAt: number): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error("--memory-child needs node --expose-gc");
  const measure = (): MemorySample => {
    gc();
    const m = process.memoryUsage();
    return { rssMb: m.rss / 2 ** 20, heapUsedMb: m.heapUsed / 2 ** 20 };
  };
  let sample: MemorySample | null = null;
  let totalSample: MemorySample | null = null;
  const report = await runBenchmark({
    root, tasks: total, shape: "single", mode: "concurrent", concurrency: CONCURRENCY, inputSize: 64, warmupTasks: WARMUP_TASKS,
    onProgress: (done) => {
      if (done === sampleAt) sample = measure();
      if (done === total) totalSample = measure();
    },
  });
  if (!sample || !totalSample) throw new Error(`memory child: only ${report.finished} of ${total} tasks finished (statuses ${JSON.stringify(report.statuses)})`);
  process.stdout.write(`${JSON.stringify({ sample, total: totalSample, report })}\n`);
}

interface FigureSummary { label: string; median: number; min: number; max: number; target: string | null; met: boolean | null }

async function main(): Promise<void> {
  const { values: args } = parseArgs({
    options: {
      quick: { type: "boolean", default: false },
      only: { type: "string" },
      json: { type: "string" },
      help: { type: "boolean", default: false },
      "memory-child": { type: "boolean", default: false },
      root: { type: "string" },
      tasks: { type: "string" },
      "sample-at": { type: "string" },
      store: { type: "string" },
    },
    strict: true,
  });
  if (args["memory-child"]) return memoryChild(args.root!, Number(args.tasks), Number(args["sample-at"]));
  if (args.help) {
    console.log("usage: npm run bench -- [--quick] [--only W1,W2,W3,LIGHT,MEMORY] [--json out.json] [--store URL]");
    return;
  }
  const sizes = args.quick ? QUICK : FULL;
  const all = workloads(sizes);
  const wanted = args.only ? args.only.split(",").map((s) => s.trim().toUpperCase()).filter(Boolean) : all.map((w) => w.id);
  const unknown = wanted.filter((id) => !all.some((w) => w.id === id));
  if (unknown.length > 0) throw new Error(`--only: unknown workload(s) ${unknown.join(", ")}; known: ${all.map((w) => w.id).join(", ")}`);
  const selected = all.filter((w) => wanted.includes(w.id));

  const cores = availableParallelism();
  const load = loadavg();
  const machine = { cores, cpu: cpus()[0]?.model ?? "unknown", platform: platform(), arch: arch(), node: process.version, loadavgAtStart: load };
  console.log(`RelayMesh end-to-end benchmark${args.quick ? " (--quick: 1 run, small counts; a smoke run, not a measurement)" : ""}`);
  console.log(`machine: ${cores} cores, ${machine.cpu}, ${machine.platform}/${machine.arch}, node ${machine.node}`);
  console.log(`load average at start: ${load.map((l) => l.toFixed(2)).join(" ")} (1, 5, 15 min)`);
  if (load[0]! >= cores * 0.5) {
    console.log(`WARNING: the 1-minute load average (${load[0]!.toFixed(2)}) is at least half the core count (${cores}): other work is running, figures will be low and noisy`);
  }
  console.log(`store: ${args.store ? `${redact(args.store)} (a scratch schema per run; MEMORY stays on SQLite)` : "SQLite in each run's root"}`);
  console.log(`setup: ${sizes.runs} run(s) per workload, a fresh temporary root per run, durability full, concurrency ${CONCURRENCY}, one process` +
    ` (MEMORY: one child process); ${WARMUP_TASKS} warm-up tasks before measuring in the workloads that submit while working\n`);

  const report: { startedAt: string; quick: boolean; machine: typeof machine; workloads: unknown[] } = {
    startedAt: new Date().toISOString(), quick: args.quick!, machine, workloads: [],
  };
  let failedTasks = 0;
  for (const w of selected) {
    const runs: RunResult[] = [];
    for (let i = 0; i < sizes.runs; i++) {
      const root = mkdtempSync(join(tmpdir(), `relaymesh-bench-${w.id.toLowerCase()}-`));
      const scratch = args.store ? scratchStoreFor(args.store, root) : undefined;
      const started = performance.now();
      try {
        runs.push(await w.once(root, scratch?.url));
      } finally {
        await scratch?.drop();
        rmSync(root, { recursive: true, force: true });
      }
      console.log(`  ${w.id} run ${i + 1}/${sizes.runs} took ${((performance.now() - started) / 1000).toFixed(1)} s`);
    }
    const summary = summarise(w, runs);
    const notSucceeded = runs.reduce((n, r) => n + r.notSucceeded, 0);
    failedTasks += notSucceeded;
    printWorkload(w, summary, notSucceeded);
    report.workloads.push({ id: w.id, title: w.title, figures: summary, notSucceeded, runs: runs.map((r) => r.raw) });
  }
  const loadEnd = loadavg();
  console.log(`load average at end: ${loadEnd.map((l) => l.toFixed(2)).join(" ")}`);
  if (failedTasks > 0) {
    console.log(`FAILED: ${failedTasks} task(s) did not end SUCCESS (see the statuses in the JSON report)`);
    process.exitCode = 1;
  }
  if (args.json) {
    writeFileSync(args.json, `${JSON.stringify({ ...report, loadavgAtEnd: loadEnd }, null, 2)}\n`);
    console.log(`report written to ${args.json}`);
  }
}

function summarise(w: Workload, runs: RunResult[]): Record<string, FigureSummary> {
  const out: Record<string, FigureSummary> = {};
  for (const f of w.figures) {
    const values = runs.map((r) => r.values[f.key]!);
    const m = median(values);
    const met = f.target ? (f.target.op === ">=" ? m >= f.target.value : m <= f.target.value) : null;
    out[f.key] = { label: f.label, median: m, ...range(values), target: f.target?.text ?? null, met };
  }
  return out;
}

function printWorkload(w: Workload, summary: Record<string, FigureSummary>, notSucceeded: number): void {
  console.log(`${w.id}  ${w.title}`);
  const rows = w.figures.map((f) => {
    const s = summary[f.key]!;
    const verdict = s.met === null ? "" : s.met ? "met" : "NOT MET";
    return [f.label, fmt(s.median, f.digits), `${fmt(s.min, f.digits)} – ${fmt(s.max, f.digits)}`, s.target ?? "", verdict];
  });
  rows.push(["tasks not SUCCESS", String(notSucceeded), "", "0", notSucceeded === 0 ? "met" : "NOT MET"]);
  const header = ["figure", "median", "range (min – max)", "target", ""];
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c]!.length)));
  const line = (cells: string[]) => `  ${cells.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join("   ")}`.trimEnd();
  console.log(line(header));
  for (const r of rows) console.log(line(r));
  console.log("");
}

function fmt(n: number, digits = 0): string {
  if (!Number.isFinite(n)) return String(n);
  return n.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.stack : error);
  process.exitCode = 1;
});
