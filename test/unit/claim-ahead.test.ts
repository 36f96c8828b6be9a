import { test } from "node:test";
import assert from "node:assert/strict";
import { ClaimAhead } from "../../src/supervisor/claim-ahead.js";

test("ClaimAhead: an explicit prefetch is kept; none until commit and step times are known", () => {
  const fixed = new ClaimAhead(8, 5);
  fixed.commitTook(10);
  fixed.stepTook(0.1);
  assert.equal(fixed.prefetch, 5);
  const a = new ClaimAhead(8, null);
  assert.equal(a.prefetch, 0);
  a.commitTook(5);
  assert.equal(a.prefetch, 0, "still no step time");
});

/** The adaptive prefetch of concurrency 8 after one commit and one step of these durations. */
function prefetchAfter(commitMs: number, stepMs: number): number {
  const a = new ClaimAhead(8, null);
  a.commitTook(commitMs);
  a.stepTook(stepMs);
  return a.prefetch;
}

test("ClaimAhead: by Little's law, twice concurrency × commit ÷ step, at most 16 × concurrency, next to none for long steps", () => {
  assert.equal(prefetchAfter(2, 1), 32, "2 × 8 × 2 ms ÷ 1 ms");
  assert.equal(prefetchAfter(8, 0.2), 16 * 8, "very short steps on slow commits: the ceiling");
  assert.equal(prefetchAfter(5, 3_000), 1, "three-second steps: next to none");
});

test("ClaimAhead: the times are moving averages, so one slow commit moves the figure a tenth of the way", () => {
  const a = new ClaimAhead(4, null);
  a.stepTook(1);
  a.commitTook(1);
  assert.equal(a.prefetch, 8);
  a.commitTook(11);
  assert.equal(a.prefetch, Math.ceil(2 * 4 * 2)); // 1 + 0.1 × (11 − 1) = 2 ms
});
