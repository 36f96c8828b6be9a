import type { BenchmarkReport } from "./runner.js";
import type { Sample } from "./recorder.js";
import { escapeXml as esc, formatNumber, lineChart, stackedBars } from "./svg.js";

const COLORS = { blue: "#1f77b4", orange: "#ff7f0e", green: "#2ca02c", red: "#d62728", purple: "#9467bd", grey: "#7f7f7f" };

/**
 * The HTML report of a run: one self-contained file (inline CSS and SVG, no script, nothing
 * fetched) readable offline — key figures, throughput, latency percentiles, failures, memory and
 * CPU over time, per-step queue wait vs run time, settings and machine.
 */
export function renderHtmlReport(r: BenchmarkReport & { inPlace?: boolean; taskName?: string }): string {
  // A last interval much shorter than the others (the drain's tail) would plot as a spike.
  const tail = r.series.at(-1);
  const s = r.series.length > 1 && tail !== undefined && tail.intervalMs < r.sampleIntervalMs / 2 ? r.series.slice(0, -1) : r.series;
  const x = (f: (p: Sample) => number | null): [number, number | null][] => s.map((p) => [p.tMs / 1000, f(p)]);
  const formatX = (sec: number) => clock(sec);
  const xTicks = timeTicks;
  const charts = [
    lineChart({
      title: "Throughput (tasks/s per interval)", yLabel: "tasks/s", formatX, xTicks,
      series: [
        { name: "completed/s", color: COLORS.blue, points: x((p) => p.completedPerSec) },
        { name: "submitted/s", color: COLORS.grey, points: x((p) => p.submittedPerSec), dashed: true },
      ],
    }),
    lineChart({
      title: "End-to-end latency of the tasks finished in each interval (ms)", yLabel: "ms", formatX, xTicks,
      series: [
        { name: "p50", color: COLORS.blue, points: x((p) => p.latencyMs?.p50 ?? null), reduce: "max" },
        { name: "p90", color: COLORS.green, points: x((p) => p.latencyMs?.p90 ?? null), reduce: "max" },
        { name: "p99", color: COLORS.orange, points: x((p) => p.latencyMs?.p99 ?? null), reduce: "max" },
        { name: "max", color: COLORS.red, points: x((p) => p.latencyMs?.max ?? null), dashed: true, reduce: "max" },
      ],
    }),
    lineChart({
      title: "Backlog: tasks submitted and not finished", yLabel: "tasks", formatX, xTicks,
      series: [{ name: "tasks in flight", color: COLORS.grey, points: x((p) => p.inFlight), reduce: "max" }],
    }),
    lineChart({
      title: "Failures per interval", yLabel: "count", formatX, xTicks,
      series: [
        { name: "tasks not SUCCESS", color: COLORS.red, points: x((p) => p.failedTasks), reduce: "max" },
        { name: "failed step attempts", color: COLORS.orange, points: x((p) => p.failedAttempts), reduce: "max" },
      ],
    }),
    lineChart({
      title: "Memory of the benchmark process (MB)", yLabel: "MB", formatX, xTicks,
      series: [
        { name: "RSS", color: COLORS.purple, points: x((p) => p.rssMb), reduce: "max" },
        { name: "main-thread JS heap", color: COLORS.green, points: x((p) => p.heapUsedMb), reduce: "max" },
      ],
    }),
    lineChart({
      title: "CPU of the benchmark process (% of one core, all threads) and its event-loop delay p99 (ms)", yLabel: "% / ms", formatX, xTicks,
      series: [
        { name: "CPU %", color: COLORS.blue, points: x((p) => p.cpuPct) },
        { name: "event-loop delay p99 ms", color: COLORS.orange, points: x((p) => p.eventLoopDelayP99Ms), reduce: "max" },
      ],
    }),
    lineChart({
      title: `Machine load average, 1 minute (${r.machine.cores} cores: above ${r.machine.cores}, processes wait for a CPU)`, yLabel: "load", formatX, xTicks,
      series: [{ name: "load average", color: COLORS.red, points: x((p) => p.loadAvg1 ?? null) }],
    }),
  ];
  const stepBars = stackedBars({
    title: "Per step, p50: queue wait, run time, commit wait (ms)", unit: "ms",
    parts: [{ name: "queue wait", color: COLORS.orange }, { name: "run", color: COLORS.blue }, { name: "commit wait", color: COLORS.green }],
    rows: r.steps.map((st) => ({ label: st.stepId, values: [st.queueWaitMs?.p50 ?? 0, st.runMs?.p50 ?? 0, st.commitMs?.p50 ?? 0] })),
  });
  const l = r.latencyMs;
  const load = r.load.model === "open" ? `open loop, ${r.load.ratePerSec} tasks/s offered` : `closed loop, ${r.load.inFlight} submissions in flight`;
  const key: [string, string][] = [
    ["workload", `${r.workload} (${r.stepsPerTask} step${r.stepsPerTask === 1 ? "" : "s"} per task)`],
    ["load", load],
    ["tasks", `${r.finished} finished of ${r.submitted} submitted${r.tasksRequested !== null ? ` (${r.tasksRequested} requested)` : ""}; stopped by ${r.stoppedBy}`],
    ["run", `${r.seconds.toFixed(2)} s${r.durationSeconds !== null ? ` (duration ${r.durationSeconds} s)` : ""}, warm-up ${r.warmupTasks} tasks`],
    ["throughput", `${r.throughputPerSec.toFixed(1)} tasks/s, ${r.stepsPerSec.toFixed(1)} steps/s`],
    ["latency", `p50 ${ms(l.p50)} · p90 ${ms(l.p90)} · p95 ${ms(l.p95)} · p99 ${ms(l.p99)} · max ${ms(l.max)} ms`],
    ["memory", `RSS ${r.resources.rssMb.start.toFixed(0)} → peak ${r.resources.rssMb.peak.toFixed(0)} → ${r.resources.rssMb.end.toFixed(0)} MB`],
    ["CPU", `${r.resources.cpuPctMean.toFixed(0)}% of one core on average (${r.machine.cores} cores)`],
    ["stability", stabilityText(r)],
    ["store", `${r.store}${r.inPlace ? `; tasks named ${r.taskName}` : ""}`],
  ];
  const failures: [string, string][] = [
    ...Object.entries(r.failures.tasks).map(([k, n]): [string, string] => [`tasks ${k}`, String(n)]),
    ...Object.entries(r.failures.byKind).map(([k, n]): [string, string] => [`step attempts ${k}`, String(n)]),
    ...r.failures.examples.map((e): [string, string] => [`example ${e.kind}`, e.message]),
  ];
  const stepRows = r.steps.map((st) => [st.stepId, pair(st.queueWaitMs), pair(st.runMs), pair(st.commitMs), String(st.runMs?.count ?? 0)]);
  const settings = Object.entries(r.settings as Record<string, unknown>).map(([k, v]): [string, string] => [k, JSON.stringify(v)]);
  const machine = Object.entries(r.machine).map(([k, v]): [string, string] => [k, Array.isArray(v) ? v.map((n: number) => n.toFixed(2)).join(" ") : String(v)]);
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(`RelayMesh bench ${r.runId}: ${r.workload}`)}</title>
<style>
body{font:14px/1.45 system-ui,sans-serif;margin:24px auto;max-width:920px;color:#222}
h1{font-size:20px;margin:0 0 4px}h2{font-size:16px;margin:28px 0 8px;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:6px 0}td,th{padding:3px 10px 3px 0;text-align:left;vertical-align:top}
th{font-weight:600;color:#555}td.n{text-align:right;font-variant-numeric:tabular-nums}
svg{display:block;margin:10px 0}svg .title{font-size:13px;font-weight:600}svg .tick{font-size:11px;fill:#555}
svg .grid{stroke:#eee}svg .frame{fill:none;stroke:#ccc}.muted{color:#777}pre{background:#f6f6f6;padding:8px;overflow:auto}
</style></head><body>
<h1>RelayMesh benchmark — ${esc(r.workload)}</h1>
<div class="muted">run ${esc(r.runId)} · RelayMesh ${esc(r.relaymeshVersion)} · ${esc(r.startedAt)} → ${esc(r.finishedAt)} · ${esc(r.machine.hostname)}</div>
<h2>Key figures</h2>${table(key)}
<h2>Over time</h2>
<p class="muted">Each point covers one ${r.sampleIntervalMs} ms interval after warm-up; latency is end to end, from a task's due time (open loop) or submit call (closed loop) to its finish.</p>
${charts.join("\n")}
<h2>Per step</h2>
<p class="muted">Queue wait: from ready (submission committed, or the last dependency succeeded) to handed to an agent. Run: the agent's time. Commit wait: from the agent's result to its committed success.</p>
${stepBars}
${table(stepRows, ["step", "queue wait p50 / p99 ms", "run p50 / p99 ms", "commit p50 / p99 ms", "runs"])}
<h2>Failures</h2>${failures.length > 0 ? table(failures) : "<p>none</p>"}
<h2>Settings in force</h2>${table([["durability", r.durability], ["concurrency", String(r.concurrency)], ...settings])}
<h2>Machine</h2>${table(machine)}
<h2>Workflow</h2><pre>${esc(JSON.stringify(r.workflow, null, 2))}</pre>
</body></html>
`;
}

function table(rows: string[][], header?: string[]): string {
  const head = header ? `<tr>${header.map((h) => `<th>${esc(h)}</th>`).join("")}</tr>` : "";
  return `<table>${head}${rows.map((row) => `<tr>${row.map((c, i) => (i === 0 && !header ? `<th>${esc(c)}</th>` : `<td>${esc(c)}</td>`)).join("")}</tr>`).join("")}</table>`;
}

function pair(x: { p50: number; p99: number } | null): string {
  return x ? `${ms(x.p50)} / ${ms(x.p99)}` : "-";
}

function ms(v: number): string {
  return Number.isFinite(v) ? formatNumber(v) : "-";
}

/** Round time ticks: seconds for short runs, whole minutes (1, 2, 5, 10, 15, 30, 60…) for long ones. */
function timeTicks(min: number, max: number): number[] {
  const span = max - min;
  const step = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14_400, 28_800, 86_400].find((s) => span / s <= 8) ?? 86_400;
  const out: number[] = [];
  for (let t = Math.ceil(min / step) * step; t <= max; t += step) out.push(t);
  return out;
}

function clock(sec: number): string {
  const s = Math.round(sec);
  return s >= 60 ? `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}` : `${s}s`;
}

function stabilityText(r: BenchmarkReport): string {
  const s = r.stability;
  if (s.latencyFlat === null) return "too short to judge (fewer than 6 intervals)";
  const x = (v: number | null) => (v === null ? "-" : `×${v.toFixed(2)}`);
  return `last third vs first third: p50 ${x(s.ratios.latencyP50)}, p99 ${x(s.ratios.latencyP99)}, throughput ${x(s.ratios.completedPerSec)}, RSS ${x(s.ratios.rssMb)} — latency ${s.latencyFlat ? "flat" : "NOT flat"}, memory ${s.memoryFlat ? "flat" : "NOT flat"}`;
}
