import { test } from "node:test";
import assert from "node:assert/strict";
import { PriorityPicker } from "../../src/supervisor/picker.js";
import { countForced } from "../../src/store/claim.js";

const LOW = 0, NORMAL = 1, HIGH = 2;
type Avail = [number, number, number];

/**
 * A claim as a store makes it, on counts: the picker's quotas first (oldest of their class),
 * then the rest by priority; the picker records what was taken. `forced`: quota picks taken
 * while a higher class had steps waiting (what the store counts as low_starvation_count).
 */
function pick(picker: PriorityPicker, available: Avail, limit: number): { order: number[]; forced: number } {
  const request = picker.plan(limit);
  const left = [...available];
  const order: number[] = [];
  const quotaTaken = [0, 0, 0];
  for (let c = 0; c < 3; c++) {
    for (let q = 0; q < (request.quotas?.[c] ?? 0) && left[c]! > 0 && order.length < limit; q++) { order.push(c); left[c]!--; quotaTaken[c]!++; }
  }
  for (let c = 2; c >= 0; c--) while (left[c]! > 0 && order.length < limit) { order.push(c); left[c]!--; }
  const backlog: [boolean, boolean, boolean] = order.length === limit ? [left[0]! > 0, left[1]! > 0, left[2]! > 0] : [false, false, false];
  const dispatch = picker.record(order, backlog).map((i) => order[i]!);
  const highestRest = Math.max(-1, ...order.slice(quotaTaken[0]! + quotaTaken[1]!));
  return { order: dispatch, forced: countForced(quotaTaken, highestRest, backlog) };
}

test("PriorityPicker plan/record: strict order high, normal, low without starvation pressure", () => {
  const picker = new PriorityPicker(100);
  const { order, forced } = pick(picker, [2, 2, 2], 6);
  assert.deepEqual(order, [HIGH, HIGH, NORMAL, NORMAL, LOW, LOW]);
  assert.equal(forced, 0);
});

test("PriorityPicker plan/record: takes only the highest classes when the limit is small", () => {
  const picker = new PriorityPicker(100);
  assert.deepEqual(pick(picker, [5, 5, 5], 3).order, [HIGH, HIGH, HIGH]);
  assert.deepEqual(pick(picker, [5, 5, 0], 3).order, [NORMAL, NORMAL, NORMAL]);
  assert.deepEqual(pick(picker, [5, 0, 0], 2).order, [LOW, LOW]);
});

test("PriorityPicker plan/record: never returns more of a class than available, nor more than the limit", () => {
  const picker = new PriorityPicker(2);
  const cases: [Avail, number][] = [
    [[0, 0, 0], 5], [[1, 0, 0], 5], [[0, 1, 0], 5], [[0, 0, 1], 5], [[3, 1, 2], 10], [[3, 1, 2], 4],
    [[10, 10, 10], 7], [[0, 0, 50], 50], [[50, 0, 50], 13], [[7, 7, 7], 0], [[1, 2, 3], 1],
  ];
  for (let round = 0; round < 3; round++) {
    for (const [available, limit] of cases) {
      const { order, forced } = pick(picker, available, limit);
      const total = available[0] + available[1] + available[2];
      assert.equal(order.length, Math.min(limit, total), `length for ${JSON.stringify(available)} limit ${limit}`);
      for (const c of [LOW, NORMAL, HIGH]) {
        const taken = order.filter((p) => p === c).length;
        assert.ok(taken <= available[c], `class ${c}: took ${taken} of ${available[c]} (${JSON.stringify(order)})`);
      }
      assert.ok(order.every((p) => p === LOW || p === NORMAL || p === HIGH));
      assert.ok(forced >= 0 && forced <= order.length);
    }
  }
});

test("PriorityPicker plan/record: with an endless supply, a low is picked at least once in every k+1 picks", () => {
  for (const k of [1, 2, 3, 5, 10]) {
    const picker = new PriorityPicker(k);
    const order: number[] = [];
    let forced = 0;
    // Many small claims, as a busy worker makes them: the guard must hold across calls.
    for (let call = 0; call < 40; call++) {
      const r = pick(picker, [1_000, 0, 1_000], 1 + (call % 4));
      order.push(...r.order);
      forced += r.forced;
    }
    for (let i = 0; i + k + 1 <= order.length; i++) {
      const window = order.slice(i, i + k + 1);
      assert.ok(window.includes(LOW), `k=${k}: no low in picks ${i}..${i + k}: ${window.join(",")}`);
    }
    const lows = order.filter((p) => p === LOW).length;
    assert.ok(order.includes(HIGH), `k=${k}: highs are still preferred`);
    assert.equal(forced, lows, `k=${k}: every low here was forced (high was always available)`);
  }
});

test("PriorityPicker plan/record: a normal waiting behind highs is forced through too", () => {
  const picker = new PriorityPicker(3);
  const order: number[] = [];
  for (let i = 0; i < 20; i++) order.push(...pick(picker, [0, 100, 100], 1).order);
  for (let i = 0; i + 4 <= order.length; i++) {
    assert.ok(order.slice(i, i + 4).includes(NORMAL), order.join(","));
  }
});

test("PriorityPicker plan/record: forced counts only anti-starvation picks", () => {
  const picker = new PriorityPicker(2);
  // Two highs, then the low that waited through them is forced.
  const r = pick(picker, [5, 0, 5], 3);
  assert.deepEqual(r.order, [HIGH, HIGH, LOW]);
  assert.equal(r.forced, 1);
  // Only lows available: they are taken in strict order, none forced.
  const r2 = pick(picker, [3, 0, 0], 3);
  assert.deepEqual(r2.order, [LOW, LOW, LOW]);
  assert.equal(r2.forced, 0);
});

test("PriorityPicker plan/record: starvation state carries across calls", () => {
  const picker = new PriorityPicker(3);
  assert.deepEqual(pick(picker, [1, 0, 1], 1), { order: [HIGH], forced: 0 });
  assert.deepEqual(pick(picker, [1, 0, 1], 1), { order: [HIGH], forced: 0 });
  assert.deepEqual(pick(picker, [1, 0, 1], 1), { order: [HIGH], forced: 0 });
  // Three highs went ahead of the waiting low: the fourth call must take the low.
  assert.deepEqual(pick(picker, [1, 0, 1], 1), { order: [LOW], forced: 1 });
  // And the counter starts again.
  assert.deepEqual(pick(picker, [1, 0, 1], 1), { order: [HIGH], forced: 0 });
});

test("PriorityPicker plan/record: picks made while no low was waiting do not count against the guard", () => {
  const picker = new PriorityPicker(2);
  for (let i = 0; i < 10; i++) assert.deepEqual(pick(picker, [0, 0, 5], 1).order, [HIGH]);
  // A low arrives now: it has waited through no higher pick yet, so high still goes first.
  assert.deepEqual(pick(picker, [1, 0, 5], 1), { order: [HIGH], forced: 0 });
});
