import { test } from "node:test";
import assert from "node:assert/strict";
import { ON_TIME_GRACE_MS, cronOf, dueAt, jitterOf, nextFrom, planTick, slotAfter } from "../../src/schedule/plan.js";
import { parseSchedule } from "../../src/schedule/definition.js";
import { InvalidInputError } from "../../src/errors.js";
import type { ScheduleRecord } from "../../src/store/types.js";

const MIN = 60_000;
const at = (iso: string) => Date.parse(iso);

function schedule(over: Partial<ScheduleRecord> = {}): ScheduleRecord {
  const base: ScheduleRecord = {
    name: "s", cron: "*/5 * * * *", timezone: null, spec: {}, overlap: "allow", catchUp: "none", catchUpWindowMs: null, jitterMs: 0,
    paused: false, nextSlotMs: at("2026-01-01T00:00:00Z"), nextAtMs: at("2026-01-01T00:00:00Z"), lastSlotMs: null, lastTaskId: null,
    firedCount: 0, skippedCount: 0, createdAtMs: 0, updatedAtMs: 0,
  };
  return { ...base, ...over };
}

test("planTick: an on-time slot fires and the next slot is the one after it", () => {
  const s = schedule();
  const plan = planTick(s, at("2026-01-01T00:00:01Z"), false);
  assert.deepEqual(plan.fires, [{ slotMs: at("2026-01-01T00:00:00Z"), outcome: "fired" }]);
  assert.equal(plan.missed, 0);
  assert.equal(plan.nextSlotMs, at("2026-01-01T00:05:00Z"));
  assert.equal(plan.nextAtMs, plan.nextSlotMs);
});

test("planTick: catch-up none drops slots missed during downtime and fires only those still within the grace", () => {
  const s = schedule();
  const now = at("2026-01-01T01:00:03Z");
  const plan = planTick(s, now, false);
  assert.deepEqual(plan.fires.map((f) => f.slotMs), [at("2026-01-01T01:00:00Z")]);
  assert.equal(plan.missed, 12);
  assert.equal(plan.nextSlotMs, at("2026-01-01T01:05:00Z"));
  // A tick that comes a little late (within the grace) loses nothing.
  const late = planTick(schedule({ cron: "* * * * * *", nextSlotMs: now - 3_000 }), now, false);
  assert.equal(late.fires.length, 4);
  assert.ok(ON_TIME_GRACE_MS > 3_000);
});

test("planTick: catch-up latest fires the newest missed slot only; all fires every slot within the window", () => {
  const now = at("2026-01-01T01:02:00Z");
  const latest = planTick(schedule({ catchUp: "latest" }), now, false);
  assert.deepEqual(latest.fires.map((f) => f.slotMs), [at("2026-01-01T01:00:00Z")]);
  assert.equal(latest.missed, 12);
  const all = planTick(schedule({ catchUp: "all" }), now, false);
  assert.equal(all.fires.length, 13);
  assert.equal(all.fires[0]!.slotMs, at("2026-01-01T00:00:00Z"));
  const windowed = planTick(schedule({ catchUp: "all", catchUpWindowMs: 20 * MIN }), now, false);
  assert.deepEqual(windowed.fires.map((f) => new Date(f.slotMs).toISOString()),
    ["2026-01-01T00:45:00.000Z", "2026-01-01T00:50:00.000Z", "2026-01-01T00:55:00.000Z", "2026-01-01T01:00:00.000Z"]);
  assert.ok(windowed.missed >= 1);
  assert.equal(windowed.nextSlotMs, at("2026-01-01T01:05:00Z"));
});

test("planTick: overlap skip records slots as skipped while the previous task is open; allow fires; cancel-previous cancels it first", () => {
  const now = at("2026-01-01T00:00:01Z");
  assert.deepEqual(planTick(schedule({ overlap: "skip" }), now, true).fires.map((f) => f.outcome), ["skipped-overlap"]);
  assert.deepEqual(planTick(schedule({ overlap: "skip" }), now, false).fires.map((f) => f.outcome), ["fired"]);
  const allow = planTick(schedule({ overlap: "allow" }), now, true);
  assert.deepEqual(allow.fires.map((f) => f.outcome), ["fired"]);
  assert.equal(allow.cancelPrevious, false);
  const cancel = planTick(schedule({ overlap: "cancel-previous" }), now, true);
  assert.deepEqual(cancel.fires.map((f) => f.outcome), ["fired"]);
  assert.equal(cancel.cancelPrevious, true);
  assert.equal(planTick(schedule({ overlap: "cancel-previous" }), now, false).cancelPrevious, false);
  // Catching up several slots under skip: the first fires, the rest would overlap it.
  const burst = planTick(schedule({ overlap: "skip", catchUp: "all" }), at("2026-01-01T00:10:01Z"), false);
  assert.deepEqual(burst.fires.map((f) => f.outcome), ["fired", "skipped-overlap", "skipped-overlap"]);
});

test("planTick: a slot whose jitter has not passed yet waits, and stays the next slot", () => {
  const s = schedule({ jitterMs: 4 * MIN });
  const j = jitterOf("s", s.nextSlotMs!, s.jitterMs);
  const before = planTick(s, s.nextSlotMs! + j - 1, false);
  if (j > 0) {
    assert.deepEqual(before.fires, []);
    assert.equal(before.nextSlotMs, s.nextSlotMs);
  }
  const after = planTick(s, s.nextSlotMs! + j, false);
  assert.deepEqual(after.fires.map((f) => f.slotMs), [s.nextSlotMs]);
});

test("jitterOf: within [0, jitterMs], the same on every call (every node agrees), spread over slots", () => {
  const seen = new Set<number>();
  for (let i = 0; i < 500; i++) {
    const slot = at("2026-01-01T00:00:00Z") + i * MIN;
    const j = jitterOf("nightly", slot, 10_000);
    assert.ok(j >= 0 && j <= 10_000, `jitter ${j}`);
    assert.equal(jitterOf("nightly", slot, 10_000), j);
    assert.equal(dueAt("nightly", slot, 10_000), slot + j);
    seen.add(Math.floor(j / 1_000));
  }
  assert.ok(seen.size >= 9, `jitter spreads over the range (${seen.size} of 11 buckets)`);
  assert.equal(jitterOf("nightly", 0, 0), 0);
});

test("cron in a time zone: 09:00 Europe/Paris is 08:00Z in winter and 07:00Z in summer", () => {
  const cron = cronOf("0 9 * * *", "Europe/Paris");
  assert.equal(slotAfter(cron, at("2026-01-10T00:00:00Z")), at("2026-01-10T08:00:00Z"));
  assert.equal(slotAfter(cron, at("2026-07-10T00:00:00Z")), at("2026-07-10T07:00:00Z"));
  assert.equal(nextFrom({ name: "x", cron: "0 9 * * *", timezone: null, jitterMs: 0 }, at("2026-01-10T00:00:00Z")).nextSlotMs, at("2026-01-10T09:00:00Z"));
});

test("cron across DST (croner's documented behaviour): a fixed time in the spring gap runs after it, in the repeated hour once; interval jobs skip the gap and run twice in the repeat", () => {
  // Europe/Paris: 2026-03-29 02:00 → 03:00 (gap); 2026-10-25 03:00 → 02:00 (02:xx twice).
  const fixed = cronOf("30 2 * * *", "Europe/Paris");
  assert.equal(slotAfter(fixed, at("2026-03-28T12:00:00Z")), at("2026-03-29T01:00:00Z"), "03:00 CEST, the first valid time after the gap");
  const autumn = [slotAfter(fixed, at("2026-10-24T12:00:00Z"))!];
  autumn.push(slotAfter(fixed, autumn[0]!)!);
  assert.deepEqual(autumn, [at("2026-10-25T00:30:00Z"), at("2026-10-26T01:30:00Z")], "02:30 runs once, at the first occurrence");

  const interval = cronOf("30 * * * *", "Europe/Paris");
  const spring: number[] = [];
  for (let t = at("2026-03-28T23:59:00Z"); spring.length < 3;) spring.push((t = slotAfter(interval, t)!));
  assert.deepEqual(spring, [at("2026-03-29T00:30:00Z"), at("2026-03-29T01:30:00Z"), at("2026-03-29T02:30:00Z")], "01:30 CET, then 03:30 and 04:30 CEST: 02:30 does not exist");
  const fall: number[] = [];
  for (let t = at("2026-10-24T23:59:00Z"); fall.length < 3;) fall.push((t = slotAfter(interval, t)!));
  assert.deepEqual(fall, [at("2026-10-25T00:30:00Z"), at("2026-10-25T01:30:00Z"), at("2026-10-25T02:30:00Z")], "02:30 CEST, 02:30 CET, 03:30 CET");
});

test("parseSchedule: a bad cron expression, time zone or policy is an InvalidInputError naming the field", () => {
  const bad = (raw: Record<string, unknown>, field: string) => {
    try {
      parseSchedule({ name: "n", cron: "* * * * *", workflow: {}, ...raw }, "schedule");
      assert.fail("should throw");
    } catch (error) {
      assert.ok(error instanceof InvalidInputError);
      assert.ok(error.problems.some((p) => p.where.includes(field)), `${field} in ${JSON.stringify(error.problems)}`);
    }
  };
  bad({ cron: "61 * * * *" }, "cron");
  bad({ cron: "not a cron" }, "cron");
  bad({ timezone: "Mars/Olympus" }, "timezone");
  bad({ overlap: "sometimes" }, "overlap");
  bad({ catchUp: "most" }, "catchUp");
  bad({ jitterMs: -1 }, "jitterMs");
  bad({ jitterMs: 2 ** 31 }, "jitterMs");
  bad({ name: "with space" }, "name");
  const ok = parseSchedule({ name: "n", cron: "*/5 * * * * *", workflow: {}, timezone: "America/New_York" }, "schedule");
  assert.equal(ok.overlap, "skip");
  assert.equal(ok.catchUp, "none");
});
