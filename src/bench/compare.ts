import { z } from "zod";
import { percentile, sortedAscending } from "./stats.js";

const Num = z.number().nullable();
const Latency = z.object({ p50: Num, p90: Num, p95: Num, p99: Num, max: Num });

/** The parts of a bench report (`reportVersion` 2) that a comparison reads; other fields pass. */
export const ComparableReportSchema = z.object({
  runId: z.string(),
  workload: z.string(),
  load: z.union([z.object({ model: z.literal("open"), ratePerSec: z.number() }), z.object({ model: z.literal("closed"), inFlight: z.number() })]),
  durability: z.string(),
  throughputPerSec: z.number(),
  stepsPerSec: z.number(),
  latencyMs: Latency.extend({ mean: Num.optional() }),
  notSucceeded: z.number(),
  resources: z.object({ rssMb: z.object({ peak: z.number(), end: z.number() }), cpuPctMean: z.number() }),
  series: z.array(z.object({
    intervalMs: z.number(), completedPerSec: z.number(), rssMb: z.number(), cpuPct: z.number(), latencyMs: Latency.nullable(),
  })),
  sampleIntervalMs: z.number(),
});
export type ComparableReport = z.infer<typeof ComparableReportSchema>;
type Series = ComparableReport["series"];

/** The middle half of a run's per-interval values of a figure. */
export interface Spread { p25: number; p75: number }

/** One figure of two runs side by side. */
export interface ComparisonRow {
  figure: string;
  unit: string;
  a: number | null;
  b: number | null;
  /** b / a; null when a is 0 or either is missing. */
  ratio: number | null;
  lowerIsBetter: boolean;
  /** Interquartile range of the figure's per-interval values in each run; null when it has no series. */
  spreadA: Spread | null;
  spreadB: Spread | null;
  /** True when the two runs' interquartile ranges do not overlap; null without both spreads. */
  beyondSpread: boolean | null;
  /** Which run did better on this figure ("same" when within the spread). */
  better: "a" | "b" | "same" | null;
}

export interface Comparison { a: string; b: string; rows: ComparisonRow[]; notes: string[] }

interface FigureDef { figure: string; unit: string; lowerIsBetter: boolean; value: (r: ComparableReport) => number | null; perInterval?: (s: Series[number]) => number | null }

const FIGURES: FigureDef[] = [
  { figure: "throughputPerSec", unit: "tasks/s", lowerIsBetter: false, value: (r) => r.throughputPerSec, perInterval: (s) => s.completedPerSec },
  { figure: "stepsPerSec", unit: "steps/s", lowerIsBetter: false, value: (r) => r.stepsPerSec },
  ...(["p50", "p90", "p95", "p99", "max"] as const).map((p): FigureDef => ({
    figure: `latencyMs.${p}`, unit: "ms", lowerIsBetter: true, value: (r) => r.latencyMs[p], perInterval: (s) => s.latencyMs?.[p] ?? null,
  })),
  { figure: "rssPeakMb", unit: "MB", lowerIsBetter: true, value: (r) => r.resources.rssMb.peak, perInterval: (s) => s.rssMb },
  { figure: "cpuPctMean", unit: "% of a core", lowerIsBetter: true, value: (r) => r.resources.cpuPctMean, perInterval: (s) => s.cpuPct },
  { figure: "notSucceeded", unit: "tasks", lowerIsBetter: true, value: (r) => r.notSucceeded },
];

/** Two runs side by side: each figure, the ratio b/a, and whether the difference exceeds the runs' own spread. */
export function compareReports(a: ComparableReport, b: ComparableReport): Comparison {
  const rows = FIGURES.map((d): ComparisonRow => {
    const va = d.value(a);
    const vb = d.value(b);
    const spreadA = d.perInterval ? spreadOf(a.series, d.perInterval) : null;
    const spreadB = d.perInterval ? spreadOf(b.series, d.perInterval) : null;
    const beyondSpread = spreadA && spreadB ? spreadA.p75 < spreadB.p25 || spreadB.p75 < spreadA.p25 : null;
    const ratio = va !== null && vb !== null && va !== 0 ? vb / va : null;
    let better: ComparisonRow["better"] = null;
    if (va !== null && vb !== null) {
      if (beyondSpread === false || va === vb) better = "same";
      else better = (vb < va) === d.lowerIsBetter ? "b" : "a";
    }
    return { figure: d.figure, unit: d.unit, a: va, b: vb, ratio, lowerIsBetter: d.lowerIsBetter, spreadA, spreadB, beyondSpread, better };
  });
  const notes: string[] = [];
  if (a.workload !== b.workload) notes.push(`the runs differ in workload: ${a.workload} vs ${b.workload}`);
  const loadText = (r: ComparableReport) => (r.load.model === "open" ? `open loop ${r.load.ratePerSec}/s` : `closed loop ${r.load.inFlight} in flight`);
  if (loadText(a) !== loadText(b)) notes.push(`the runs differ in offered load: ${loadText(a)} vs ${loadText(b)}`);
  if (a.durability !== b.durability) notes.push(`the runs differ in durability: ${a.durability} vs ${b.durability}`);
  for (const [name, r] of [["A", a], ["B", b]] as const) {
    if (r.series.length < 4) notes.push(`run ${name} has only ${r.series.length} interval(s): its spread is not known, run longer to judge differences`);
  }
  return { a: a.runId, b: b.runId, rows, notes };
}

/** Interquartile range of a figure over the run's full intervals (the last, partial one left out); null with fewer than 4. */
function spreadOf(series: Series, f: (s: Series[number]) => number | null): Spread | null {
  const full = series.length > 1 ? series.slice(0, -1) : series;
  const values = full.flatMap((s) => { const v = f(s); return v === null ? [] : [v]; });
  if (values.length < 4) return null;
  const sorted = sortedAscending(values);
  return { p25: percentile(sorted, 25), p75: percentile(sorted, 75) };
}
