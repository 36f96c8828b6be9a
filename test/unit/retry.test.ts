import { test } from "node:test";
import assert from "node:assert/strict";
import { backoffMs } from "../../src/supervisor/retry.js";

const policy = { baseBackoffMs: 100, maxBackoffMs: 10_000 };

test("backoffMs: bounds are [cap/2, cap] with random 0 and random 1", () => {
  assert.equal(backoffMs(1, policy, () => 0), 50);
  assert.equal(backoffMs(1, policy, () => 1), 100);
  assert.equal(backoffMs(3, policy, () => 0), 200);
  assert.equal(backoffMs(3, policy, () => 1), 400);
});

test("backoffMs: grows exponentially with the attempt (base * 2^(attempt-1))", () => {
  const upper = [1, 2, 3, 4, 5, 6].map((a) => backoffMs(a, policy, () => 1));
  assert.deepEqual(upper, [100, 200, 400, 800, 1600, 3200]);
  const lower = [1, 2, 3, 4, 5, 6].map((a) => backoffMs(a, policy, () => 0));
  assert.deepEqual(lower, [50, 100, 200, 400, 800, 1600]);
});

test("backoffMs: is capped at maxBackoffMs, also for huge attempt numbers", () => {
  const capped = { baseBackoffMs: 100, maxBackoffMs: 1_000 };
  assert.equal(backoffMs(5, capped, () => 1), 1_000);
  assert.equal(backoffMs(5, capped, () => 0), 500);
  for (const attempt of [10, 60, 1_000, 1_000_000]) {
    const hi = backoffMs(attempt, capped, () => 1);
    const lo = backoffMs(attempt, capped, () => 0);
    assert.equal(hi, 1_000, `attempt ${attempt}`);
    assert.equal(lo, 500, `attempt ${attempt}`);
  }
});

test("backoffMs: never retries immediately and stays within the bounds for any random value", () => {
  for (let attempt = 1; attempt <= 12; attempt++) {
    const cap = Math.min(policy.maxBackoffMs, policy.baseBackoffMs * 2 ** (attempt - 1));
    for (const r of [0, 0.001, 0.25, 0.5, 0.75, 0.999, 1]) {
      const d = backoffMs(attempt, policy, () => r);
      assert.ok(Number.isInteger(d), `integer delay, got ${d}`);
      assert.ok(d >= cap / 2 && d <= cap, `attempt ${attempt}, random ${r}: ${d} outside [${cap / 2}, ${cap}]`);
      assert.ok(d > 0);
    }
  }
});

test("backoffMs: jitter spreads delays (different random values give different delays)", () => {
  const values = new Set([0, 0.2, 0.4, 0.6, 0.8, 1].map((r) => backoffMs(4, policy, () => r)));
  assert.equal(values.size, 6);
});

test("backoffMs: a zero base gives zero delay", () => {
  assert.equal(backoffMs(3, { baseBackoffMs: 0, maxBackoffMs: 0 }, () => 1), 0);
});

test("backoffMs: uses Math.random by default and stays within bounds", () => {
  for (let i = 0; i < 200; i++) {
    const d = backoffMs(2, policy);
    assert.ok(d >= 100 && d <= 200, String(d));
  }
});
