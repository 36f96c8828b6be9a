import * as hdr from "hdr-histogram-js";

/** Latency percentiles in milliseconds (nearest rank, 3 significant digits). */
export interface LatencySummary { count: number; p50: number; p90: number; p95: number; p99: number; max: number; mean: number }

/**
 * Durations in milliseconds kept in an HdrHistogram (microsecond resolution, 3 significant
 * digits): constant memory however long the run, exact count and max.
 */
export class DurationHistogram {
  readonly #h = hdr.build({ numberOfSignificantValueDigits: 3, autoResize: true });

  record(ms: number): void {
    this.#h.recordValue(Math.max(0, Math.round(ms * 1000)));
  }

  get count(): number {
    return this.#h.totalCount;
  }

  reset(): void {
    this.#h.reset();
  }

  /** Percentile (0–100) in ms; null when nothing was recorded. */
  percentile(p: number): number | null {
    return this.#h.totalCount === 0 ? null : Math.min(this.#h.getValueAtPercentile(p), this.#h.maxValue) / 1000;
  }

  summary(): LatencySummary | null {
    if (this.#h.totalCount === 0) return null;
    // A bucket's upper bound can lie past the largest value recorded: never report a percentile above max.
    const at = (p: number) => Math.min(this.#h.getValueAtPercentile(p), this.#h.maxValue) / 1000;
    return { count: this.#h.totalCount, p50: at(50), p90: at(90), p95: at(95), p99: at(99), max: this.#h.maxValue / 1000, mean: this.#h.mean / 1000 };
  }
}
