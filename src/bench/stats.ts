/** Small summary statistics for benchmark reports (no dependencies). */

/** A copy of `values` sorted ascending. */
export function sortedAscending(values: ArrayLike<number>): Float64Array {
  return Float64Array.from(values).sort();
}

/**
 * The `p`-th percentile (0–100) of values already sorted ascending, by the nearest-rank method:
 * the smallest value with at least p% of the values at or below it. NaN when there are none.
 */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (!(p >= 0 && p <= 100)) throw new RangeError(`percentile: p must be between 0 and 100, got ${p}`);
  const n = sorted.length;
  if (n === 0) return Number.NaN;
  const rank = Math.max(1, Math.ceil((p / 100) * n));
  return sorted[rank - 1]!;
}

/** The middle value (the mean of the two middle ones for an even count). NaN when there are none. */
export function median(values: ArrayLike<number>): number {
  const s = sortedAscending(values);
  const n = s.length;
  if (n === 0) return Number.NaN;
  const mid = n >> 1;
  return n % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** Smallest and largest value. NaN for both when there are none. */
export function range(values: ArrayLike<number>): { min: number; max: number } {
  if (values.length === 0) return { min: Number.NaN, max: Number.NaN };
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  return { min, max };
}
