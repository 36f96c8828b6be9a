import { test } from "node:test";
import assert from "node:assert/strict";
import { parseDuration } from "../../src/bench/duration.js";
import { compareReports, type ComparableReport } from "../../src/bench/compare.js";
import { stabilityOf } from "../../src/bench/stability.js";
import { lineChart } from "../../src/bench/svg.js";
import { DurationHistogram } from "../../src/bench/histogram.js";
import type { Sample } from "../../src/bench/recorder.js";
import { scratchStoreFor } from "../../src/store/scratch.js";

test("parseDuration: units, combinations and bare seconds; null for anything else", () => {
  assert.equal(parseDuration("90"), 90_000);
  assert.equal(parseDuration("500ms"), 500);
  assert.equal(parseDuration("30s"), 30_000);
  assert.equal(parseDuration("10m"), 600_000);
  assert.equal(parseDuration("1.5h"), 5_400_000);
  assert.equal(parseDuration("1h30m"), 5_400_000);
  assert.equal(parseDuration("2d"), 172_800_000);
  for (const bad of ["abc", "", "0", "0s", "-5s", "10 m", "m", "1x", "1h-30m"]) assert.equal(parseDuration(bad), null, bad);
});

test("DurationHistogram: percentiles within 0.1%, exact count and max, null when empty", () => {
  const h = new DurationHistogram();
  assert.equal(h.summary(), null);
  for (let i = 1; i <= 1000; i++) h.record(i / 10);
  const s = h.summary()!;
  assert.equal(s.count, 1000);
  assert.ok(Math.abs(s.p50 - 50) <= 0.05, `p50 ${s.p50}`);
  assert.ok(Math.abs(s.p99 - 99) <= 0.1, `p99 ${s.p99}`);
  assert.ok(Math.abs(s.max - 100) <= 0.1);
  h.reset();
  assert.equal(h.count, 0);
});

function sample(i: number, o: { p50?: number; p99?: number; rss?: number; rate?: number } = {}): Sample {
  const lat = o.p50 === undefined ? null : { p50: o.p50, p90: o.p50, p95: o.p99!, p99: o.p99!, max: o.p99! };
  return {
    tMs: (i + 1) * 1000, intervalMs: 1000, submitted: i, completed: i, submittedPerSec: o.rate ?? 100, completedPerSec: o.rate ?? 100,
    failedTasks: 0, failedAttempts: 0, inFlight: 0, latencyMs: lat, rssMb: o.rss ?? 100, heapUsedMb: 10, cpuPct: 50, eventLoopDelayP99Ms: 1, loadAvg1: 0.5,
  };
}

test("stabilityOf: flat runs pass, growing latency or memory fail, short runs are not judged", () => {
  const flat = Array.from({ length: 30 }, (_, i) => sample(i, { p50: 2 + (i % 2) * 0.1, p99: 6, rss: 150 + (i % 3) }));
  const s = stabilityOf(flat);
  assert.equal(s.latencyFlat, true);
  assert.equal(s.memoryFlat, true);
  assert.ok(Math.abs(s.ratios.rssMb! - 1) < 0.05);
  const growing = Array.from({ length: 30 }, (_, i) => sample(i, { p50: 2 + i, p99: 6 + i, rss: 150 + 10 * i }));
  const g = stabilityOf(growing);
  assert.equal(g.latencyFlat, false);
  assert.equal(g.memoryFlat, false);
  assert.equal(stabilityOf(flat.slice(0, 5)).latencyFlat, null);
});

function report(runId: string, series: Sample[], throughput: number, p50: number): ComparableReport {
  return {
    runId, workload: "shape:single", load: { model: "open", ratePerSec: 100 }, durability: "full", throughputPerSec: throughput, stepsPerSec: throughput,
    latencyMs: { p50, p90: p50, p95: p50, p99: p50 * 2, max: p50 * 3, mean: p50 }, notSucceeded: 0,
    resources: { rssMb: { peak: 120, end: 110 }, cpuPctMean: 50 }, series, sampleIntervalMs: 1000,
  };
}

test("compareReports: ratios b/a; a difference is beyond spread only when the interquartile ranges do not overlap", () => {
  const noisy = (base: number) => Array.from({ length: 20 }, (_, i) => sample(i, { p50: base + (i % 4) * 0.2, p99: base * 2, rate: 100 + (i % 5) }));
  const a = report("a", noisy(2), 100, 2);
  const b = report("b", noisy(4), 100, 4);
  const c = report("c", noisy(2.1), 101, 2.1);
  const ab = compareReports(a, b);
  const p50 = ab.rows.find((r) => r.figure === "latencyMs.p50")!;
  assert.equal(p50.ratio, 2);
  assert.equal(p50.beyondSpread, true);
  assert.equal(p50.better, "a");
  const tp = ab.rows.find((r) => r.figure === "throughputPerSec")!;
  assert.equal(tp.beyondSpread, false, "same offered rate: throughput within the spread");
  assert.equal(tp.better, "same");
  const ac = compareReports(a, c).rows.find((r) => r.figure === "latencyMs.p50")!;
  assert.equal(ac.beyondSpread, false, "a 5% move inside a 30% spread is noise");
  const steps = ab.rows.find((r) => r.figure === "stepsPerSec")!;
  assert.equal(steps.spreadA, null);
  assert.equal(steps.beyondSpread, null);
  const short = compareReports(report("s", noisy(2).slice(0, 2), 100, 2), b);
  assert.ok(short.notes.some((n) => /only 2 interval/.test(n)));
  assert.equal(short.rows.find((r) => r.figure === "latencyMs.p50")!.beyondSpread, null);
});

test("lineChart: inline SVG, text escaped, gaps for missing points, long series merged", () => {
  const svg = lineChart({
    title: "<b>&latency</b>", yLabel: "ms",
    series: [{ name: "p50 \"x\"", color: "#000", points: Array.from({ length: 5000 }, (_, i): [number, number | null] => [i, i % 100 === 0 ? null : i]) }],
  });
  assert.match(svg, /^<svg /);
  assert.ok(!svg.includes("<b>"));
  assert.match(svg, /&#60;b&#62;&#38;latency/);
  const d = /<path d="([^"]+)"/.exec(svg)![1]!;
  assert.ok(d.split(/[ML]/).length - 1 <= 600, "at most 600 points drawn");
  const gappy = lineChart({ title: "t", yLabel: "y", series: [{ name: "s", color: "#000", points: [[0, 1], [1, null], [2, 3]] }] });
  assert.equal((/<path d="([^"]+)"/.exec(gappy)![1]!.match(/M/g) ?? []).length, 2, "a null starts a new segment");
});

test("scratchStoreFor: SQLite in the scratch folder; PostgreSQL in a <schema>_bench_<random> schema of the same database; others refused", () => {
  assert.equal(scratchStoreFor(undefined, "/tmp/x").url, "sqlite:/tmp/x/relaymesh.db");
  assert.equal(scratchStoreFor("sqlite:/data/real.db", "/tmp/x").url, "sqlite:/tmp/x/relaymesh.db");
  const pg = scratchStoreFor("postgres://u:secret@db:5432/app?schema=prod", "/tmp/x");
  const url = new URL(pg.url);
  assert.match(url.searchParams.get("schema")!, /^prod_bench_[0-9a-f]{8}$/);
  assert.equal(url.pathname, "/app");
  assert.ok(!pg.location.includes("secret"), "the location hides the password");
  assert.match(new URL(scratchStoreFor("postgresql://db/app", "/tmp/x").url).searchParams.get("schema")!, /^relaymesh_bench_/);
  const long = new URL(scratchStoreFor(`postgres://db/app?schema=${"s".repeat(63)}`, "/tmp/x").url).searchParams.get("schema")!;
  assert.ok(long.length <= 63, "within PostgreSQL's identifier limit");
  assert.throws(() => scratchStoreFor("mysql://db/app", "/tmp/x"), /unknown store URL/);
});

test("DurationHistogram: percentiles never exceed the largest value recorded", () => {
  const h = new DurationHistogram();
  for (const v of [1.2345, 17.777, 123.4567, 999.9999, 5_000.1234]) h.record(v);
  const s = h.summary()!;
  assert.ok(s.p50 <= s.p90 && s.p90 <= s.p99 && s.p99 <= s.max, JSON.stringify(s));
  assert.ok(h.percentile(100)! <= s.max);
});
