import { median } from "./stats.js";
import type { Sample } from "./recorder.js";

/** Figures of one part of a run (medians of its per-interval values). */
export interface StabilityPart { latencyP50Ms: number | null; latencyP99Ms: number | null; completedPerSec: number; rssMb: number }

/**
 * The first third of a run against its last third. `flat` holds when the last third's median
 * p50 and p99 are within ×1.5 of the first third's and its resident memory within ×1.2; null
 * when the run has fewer than 6 intervals to judge by.
 */
export interface Stability {
  firstThird: StabilityPart | null;
  lastThird: StabilityPart | null;
  ratios: { latencyP50: number | null; latencyP99: number | null; completedPerSec: number | null; rssMb: number | null };
  latencyFlat: boolean | null;
  memoryFlat: boolean | null;
}

/** Latency may grow by this factor from the first to the last third and still count as flat. */
export const LATENCY_FLAT_RATIO = 1.5;
/** Resident memory may grow by this factor and still count as flat. */
export const MEMORY_FLAT_RATIO = 1.2;

export function stabilityOf(series: Sample[]): Stability {
  if (series.length < 6) {
    return { firstThird: null, lastThird: null, ratios: { latencyP50: null, latencyP99: null, completedPerSec: null, rssMb: null }, latencyFlat: null, memoryFlat: null };
  }
  const third = Math.floor(series.length / 3);
  // The last interval is usually partial (the drain's tail): leave it out.
  const first = part(series.slice(0, third));
  const last = part(series.slice(series.length - 1 - third, series.length - 1));
  const ratio = (a: number | null, b: number | null) => (a !== null && b !== null && a > 0 ? b / a : null);
  const ratios = {
    latencyP50: ratio(first.latencyP50Ms, last.latencyP50Ms), latencyP99: ratio(first.latencyP99Ms, last.latencyP99Ms),
    completedPerSec: ratio(first.completedPerSec, last.completedPerSec), rssMb: ratio(first.rssMb, last.rssMb),
  };
  return {
    firstThird: first, lastThird: last, ratios,
    latencyFlat: ratios.latencyP50 === null || ratios.latencyP99 === null ? null : ratios.latencyP50 <= LATENCY_FLAT_RATIO && ratios.latencyP99 <= LATENCY_FLAT_RATIO,
    memoryFlat: ratios.rssMb === null ? null : ratios.rssMb <= MEMORY_FLAT_RATIO,
  };
}

function part(samples: Sample[]): StabilityPart {
  const lat = samples.filter((s) => s.latencyMs !== null);
  const m = (values: number[]) => (values.length > 0 ? median(values) : null);
  return {
    latencyP50Ms: m(lat.map((s) => s.latencyMs!.p50)), latencyP99Ms: m(lat.map((s) => s.latencyMs!.p99)),
    completedPerSec: median(samples.map((s) => s.completedPerSec)), rssMb: median(samples.map((s) => s.rssMb)),
  };
}
