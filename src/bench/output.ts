import { writeFileSync } from "node:fs";
import { writeJsonFile } from "../ops/exports.js";
import { renderHtmlReport } from "./html.js";
import type { BenchmarkReport } from "./runner.js";

/** The HTML report's path beside a JSON report's: `x.json` → `x.html`, anything else → `<path>.html`. */
export function htmlPathFor(jsonPath: string): string {
  return jsonPath.endsWith(".json") ? `${jsonPath.slice(0, -".json".length)}.html` : `${jsonPath}.html`;
}

/** Writes the JSON report and the self-contained HTML report beside it; returns both absolute paths. */
export function writeReports(jsonPath: string, report: BenchmarkReport): { json: string; html: string } {
  const json = writeJsonFile(jsonPath, report);
  const html = htmlPathFor(json);
  writeFileSync(html, renderHtmlReport(report));
  return { json, html };
}

const ms = (v: number | null | undefined) => (v === null || v === undefined || !Number.isFinite(v) ? "-" : v < 10 ? v.toFixed(2) : v.toFixed(1));

/** The report's summary for people. */
export function summaryLines(r: BenchmarkReport): string[] {
  const l = r.latencyMs;
  const load = r.load.model === "open" ? `open loop at ${r.load.ratePerSec} tasks/s` : `closed loop, ${r.load.inFlight} in flight`;
  const lines = [
    `${r.finished}/${r.tasks} ${r.workload} tasks (${r.stepsPerTask} step${r.stepsPerTask === 1 ? "" : "s"}) in ${r.seconds.toFixed(2)}s, ${load}, stopped by ${r.stoppedBy}`,
    `throughput ${r.throughputPerSec.toFixed(0)} tasks/s, ${r.stepsPerSec.toFixed(0)} steps/s`,
    `latency p50 ${ms(l.p50)} ms, p90 ${ms(l.p90)} ms, p95 ${ms(l.p95)} ms, p99 ${ms(l.p99)} ms, max ${ms(l.max)} ms`,
    `memory RSS ${r.resources.rssMb.start.toFixed(0)} → peak ${r.resources.rssMb.peak.toFixed(0)} → ${r.resources.rssMb.end.toFixed(0)} MB; CPU ${r.resources.cpuPctMean.toFixed(0)}% of one core on average`,
  ];
  const s = r.stability;
  if (s.latencyFlat !== null) {
    const x = (v: number | null) => (v === null ? "-" : `×${v.toFixed(2)}`);
    lines.push(`last third vs first: p50 ${x(s.ratios.latencyP50)}, p99 ${x(s.ratios.latencyP99)}, RSS ${x(s.ratios.rssMb)} — latency ${s.latencyFlat ? "flat" : "NOT flat"}, memory ${s.memoryFlat ? "flat" : "NOT flat"}`);
  }
  const failed = Object.entries(r.failures.tasks).map(([k, n]) => `${n} ${k}`).join(", ");
  const kinds = Object.entries(r.failures.byKind).map(([k, n]) => `${n} ${k}`).join(", ");
  lines.push(failed || kinds ? `failures: tasks ${failed || "none"}; step attempts ${kinds || "none"}` : "failures: none");
  if (r.steps.length > 1 || r.steps[0]?.queueWaitMs) {
    lines.push("per step (p50 / p99 ms):  queue wait   run   commit");
    for (const st of r.steps) {
      const pair = (x: { p50: number; p99: number } | null) => (x ? `${ms(x.p50)} / ${ms(x.p99)}` : "-");
      lines.push(`  ${st.stepId.padEnd(12)} ${pair(st.queueWaitMs).padStart(16)} ${pair(st.runMs).padStart(16)} ${pair(st.commitMs).padStart(16)}`);
    }
  }
  return lines;
}
