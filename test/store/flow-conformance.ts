// Time and flow control in the Store conformance suite: delayed starts, concurrency keys, rate
// limits, dedupe windows, deadlines and schedules. Interface only; time moves through `nowMs`.
import { describe, test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import type { Store } from "../../src/store/store.js";
import type { CommitBatch, NewStep, NewTask, ScheduleDefinition } from "../../src/store/types.js";

type Factory = () => Promise<{ store: Store; cleanup(): Promise<void> }>;

const T0 = 1_700_000_000_000;
const NODE = "node-a";

type StepExtra = Partial<Pick<NewStep, "notBeforeMs" | "concurrency" | "rateLimit" | "dependsOn">> & { id?: string; input?: unknown };

function task(steps: StepExtra[] = [{}], extra: Partial<Omit<NewTask, "steps">> = {}): NewTask {
  return {
    taskId: randomUUID(), name: null, priority: 1, idempotencyKey: null, failFast: false,
    traceId: randomUUID().replace(/-/g, ""), parentSpanId: null, ...extra,
    steps: steps.map((s, i) => ({
      stepId: s.id ?? `s${i}`, agent: "echo", inputJson: JSON.stringify(s.input ?? null), priority: 1, dependsOn: s.dependsOn ?? [],
      maxAttempts: 3, baseBackoffMs: 100, maxBackoffMs: 1_000, timeoutMs: null,
      notBeforeMs: s.notBeforeMs ?? null, concurrency: s.concurrency ?? null, rateLimit: s.rateLimit ?? null,
    })),
  };
}

function batch(nowMs: number, parts: Partial<CommitBatch> = {}): CommitBatch {
  return {
    nowMs, nodeId: NODE, leaseTimeoutMs: 60_000, submissions: [], completions: [], failures: [], renewals: [], releases: [],
    releaseRetriesLimit: 1_000, reclaimExpiredLimit: 0, claim: null, ...parts,
  };
}

const claim = (limit = 100) => ({ limit });

async function stepStatus(store: Store, taskId: string, stepId = "s0"): Promise<string> {
  return (await store.getTask(taskId))!.steps.find((s) => s.stepId === stepId)!.status;
}

export function flowConformance(name: string, factory: () => ReturnType<Factory>): void {
  async function open(t: TestContext): Promise<Store> {
    const { store, cleanup } = await factory();
    t.after(cleanup);
    return store;
  }

  describe(`Store conformance (time and flow control): ${name}`, () => {
    test("commit: a step with notBeforeMs waits SCHEDULED, is reported as the next due time, and is claimed once due", async (t) => {
      const store = await open(t);
      const tk = task([{ notBeforeMs: T0 + 5_000 }]);
      const r = await store.commit(batch(T0, { submissions: [tk], claim: claim() }));
      assert.deepEqual(r.claimed, []);
      assert.equal(r.nextRetryAtMs, T0 + 5_000);
      assert.equal(await stepStatus(store, tk.taskId), "SCHEDULED");
      const snap = await store.opsSnapshot(T0);
      assert.equal(snap.steps.SCHEDULED, 1);
      assert.deepEqual((await store.commit(batch(T0 + 4_999, { claim: claim() }))).claimed, []);
      const due = await store.commit(batch(T0 + 5_000, { claim: claim() }));
      assert.deepEqual(due.claimed.map((c) => c.taskId), [tk.taskId]);
      assert.equal(due.claimed[0]!.attempt, 1);
    });

    test("commit: a far-off delayed step does not block READY ones behind it", async (t) => {
      const store = await open(t);
      const later = task([{ notBeforeMs: T0 + 86_400_000 }]);
      const now = task();
      const r = await store.commit(batch(T0, { submissions: [later, now], claim: claim() }));
      assert.deepEqual(r.claimed.map((c) => c.taskId), [now.taskId]);
      assert.equal(r.nextRetryAtMs, T0 + 86_400_000);
    });

    test("commit: a dependent with its own notBeforeMs goes SCHEDULED when its dependency succeeds early", async (t) => {
      const store = await open(t);
      const tk = task([{ id: "a" }, { id: "b", dependsOn: ["a"], notBeforeMs: T0 + 1_000 }]);
      const r = await store.commit(batch(T0, { submissions: [tk], claim: claim() }));
      const a = r.claimed[0]!;
      await store.commit(batch(T0 + 10, { completions: [{ ...a, outputJson: "1" }] }));
      assert.equal(await stepStatus(store, tk.taskId, "b"), "SCHEDULED");
      assert.deepEqual((await store.commit(batch(T0 + 20, { claim: claim() }))).claimed, []);
      const due = await store.commit(batch(T0 + 1_000, { claim: claim() }));
      assert.deepEqual(due.claimed.map((c) => c.stepId), ["b"]);
    });

    test("commit: a concurrency key admits at most `limit` steps, without blocking other keys, and the next when a slot frees", async (t) => {
      const store = await open(t);
      const k = (key: string) => ({ concurrency: { key, limit: 2, strategy: "queue" as const } });
      const three = [task([k("cust-1")]), task([k("cust-1")]), task([k("cust-1")])];
      const other = task([k("cust-2")]);
      const r = await store.commit(batch(T0, { submissions: [...three, other], claim: claim() }));
      assert.deepEqual(new Set(r.claimed.map((c) => c.taskId)), new Set([three[0]!.taskId, three[1]!.taskId, other.taskId]));
      assert.equal(await stepStatus(store, three[2]!.taskId), "QUEUED");
      const view = (await store.getTask(three[2]!.taskId))!.steps[0]!;
      assert.equal(view.concurrencyKey, "cust-1");
      // A retry keeps its slot: still no room.
      const first = r.claimed.find((c) => c.taskId === three[0]!.taskId)!;
      const err = { name: "Error", code: "RELAYMESH_ERR_AGENT_FAILED", message: "x" };
      await store.commit(batch(T0 + 1, { failures: [{ ...first, attempt: 1, error: err, next: { kind: "retry", atMs: T0 + 100 } }], claim: claim() }));
      assert.equal(await stepStatus(store, three[2]!.taskId), "QUEUED");
      const second = r.claimed.find((c) => c.taskId === three[1]!.taskId)!;
      const done = await store.commit(batch(T0 + 2, { completions: [{ ...second, outputJson: "1" }], claim: claim() }));
      assert.deepEqual(done.claimed.map((c) => c.taskId), [three[2]!.taskId]);
    });

    test("commit: long queues: a key admits exactly its free slots past the first page, full keys stay put, cancel-newest cancels every newcomer", async (t) => {
      const store = await open(t);
      const k = (key: string, limit: number, strategy: "queue" | "cancel-newest" = "queue") => ({ concurrency: { key, limit, strategy } });
      const wide = Array.from({ length: 100 }, () => task([k("wide", 45)]));
      const full = Array.from({ length: 40 }, () => task([k("full", 1)]));
      await store.commit(batch(T0, { submissions: [...wide, ...full] }));
      const statuses = async (ts: NewTask[]) => {
        const out = new Map<string, number>();
        for (const x of ts) { const st = await stepStatus(store, x.taskId); out.set(st, (out.get(st) ?? 0) + 1); }
        return Object.fromEntries(out);
      };
      assert.deepEqual(await statuses(wide), { READY: 45, QUEUED: 55 }, "45 slots filled in order, over more than one page");
      for (const x of wide.slice(0, 45)) assert.equal(await stepStatus(store, x.taskId), "READY", "the oldest first");
      assert.deepEqual(await statuses(full), { READY: 1, QUEUED: 39 });
      const holder = task([k("n", 1, "cancel-newest")]);
      await store.commit(batch(T0 + 1, { submissions: [holder] }));
      const newcomers = Array.from({ length: 40 }, () => task([k("n", 1, "cancel-newest")]));
      await store.commit(batch(T0 + 2, { submissions: newcomers }));
      assert.deepEqual(await statuses(newcomers), { CANCELLED: 40 });
      assert.equal(await stepStatus(store, holder.taskId), "READY");
    });

    test("commit: more keys with free slots than one pass looks at: the rest are admitted by the next commit, none starves", async (t) => {
      const store = await open(t);
      const keys = 520;
      const tasks = Array.from({ length: keys * 2 }, (_, i) => task([{ concurrency: { key: `key-${String(i % keys).padStart(4, "0")}`, limit: 1, strategy: "queue" } }]));
      await store.commit(batch(T0, { submissions: tasks }));
      await store.commit(batch(T0 + 1, { claim: claim(1) }));
      await store.commit(batch(T0 + 2, { claim: claim(1) }));
      const filled = new Map<string, number>();
      for (const x of tasks) {
        const step = (await store.getTask(x.taskId))!.steps[0]!;
        if (step.status !== "QUEUED") filled.set(step.concurrencyKey!, (filled.get(step.concurrencyKey!) ?? 0) + 1);
      }
      assert.equal(filled.size, keys, "every key has its one slot filled");
      assert.ok([...filled.values()].every((n) => n === 1), "and no more than its limit");
    });

    test("commit: concurrency strategy cancel-newest cancels the newcomer's task; cancel-in-progress the holder's", async (t) => {
      const store = await open(t);
      const c = (strategy: "cancel-newest" | "cancel-in-progress", key: string) => ({ concurrency: { key, limit: 1, strategy } });
      const holder = task([c("cancel-newest", "n")]);
      const first = await store.commit(batch(T0, { submissions: [holder], claim: claim() }));
      assert.equal(first.claimed.length, 1);
      const newcomer = task([c("cancel-newest", "n")]);
      const r = await store.commit(batch(T0 + 1, { submissions: [newcomer], claim: claim() }));
      assert.deepEqual(r.claimed, []);
      const cancelled = (await store.getTask(newcomer.taskId))!;
      assert.equal(cancelled.status, "CANCELLED");
      assert.equal(cancelled.cancelReason, "concurrency");
      assert.equal(await stepStatus(store, holder.taskId), "RUNNING");

      const old = task([c("cancel-in-progress", "p")]);
      const running = (await store.commit(batch(T0 + 2, { submissions: [old], claim: claim() }))).claimed[0]!;
      const fresh = task([c("cancel-in-progress", "p")]);
      const r2 = await store.commit(batch(T0 + 3, { submissions: [fresh], claim: claim() }));
      assert.deepEqual(r2.cancelledRunning.map((x) => x.taskId), [old.taskId]);
      assert.deepEqual(r2.claimed.map((x) => x.taskId), [fresh.taskId]);
      assert.equal((await store.getTask(old.taskId))!.status, "CANCELLED");
      // The cancelled holder's late result is refused (its epoch moved on).
      const late = await store.commit(batch(T0 + 4, { completions: [{ ...running, outputJson: "1" }] }));
      assert.equal(late.refused.length, 1);
    });

    test("commit: a rate limit lets one step per token through; the rest wait THROTTLED without spending an attempt", async (t) => {
      const store = await open(t);
      const rateLimit = { name: "api", bucket: "api", perSecond: 2, burst: 1 };
      const tasks = [task([{ rateLimit }]), task([{ rateLimit }]), task([{ rateLimit }])];
      const r = await store.commit(batch(T0, { submissions: tasks, claim: claim() }));
      assert.equal(r.claimed.length, 1);
      const waiting = (await Promise.all(tasks.map((x) => store.getTask(x.taskId)))).map((x) => x!.steps[0]!).filter((s) => s.status === "THROTTLED");
      assert.equal(waiting.length, 2);
      for (const s of waiting) assert.equal(s.attempt, 0);
      assert.deepEqual(waiting.map((s) => s.readyAtMs).sort(), [T0 + 500, T0 + 1_000]);
      assert.equal(r.nextRetryAtMs, T0 + 500);
      assert.equal((await store.counters())["rate_limited_total:api"], 2);
      assert.deepEqual((await store.commit(batch(T0 + 499, { claim: claim() }))).claimed, []);
      assert.equal((await store.commit(batch(T0 + 500, { claim: claim() }))).claimed.length, 1);
      assert.equal((await store.commit(batch(T0 + 1_000, { claim: claim() }))).claimed.length, 1);
      // Separate buckets (keyed limits) do not share tokens.
      const a = task([{ rateLimit: { ...rateLimit, bucket: "api\u001fa" } }]);
      const b = task([{ rateLimit: { ...rateLimit, bucket: "api\u001fb" } }]);
      assert.equal((await store.commit(batch(T0 + 1_001, { submissions: [a, b], claim: claim() }))).claimed.length, 2);
    });

    test("commit: a burst lets `burst` steps through at once, then one per interval", async (t) => {
      const store = await open(t);
      const rateLimit = { name: "b", bucket: "b", perSecond: 10, burst: 3 };
      const tasks = Array.from({ length: 5 }, () => task([{ rateLimit }]));
      assert.equal((await store.commit(batch(T0, { submissions: tasks, claim: claim() }))).claimed.length, 3);
      assert.equal((await store.commit(batch(T0 + 99, { claim: claim() }))).claimed.length, 0);
      assert.equal((await store.commit(batch(T0 + 100, { claim: claim() }))).claimed.length, 1);
    });

    test("commit: a dedupe window drops a second submission (returning the first) or replaces its inputs until it starts", async (t) => {
      const store = await open(t);
      const first = task([{ input: 1 }], { dedupe: { key: "d", windowMs: 1_000, mode: "drop" } });
      const second = task([{ input: 2 }], { dedupe: { key: "d", windowMs: 1_000, mode: "drop" } });
      const r = await store.commit(batch(T0, { submissions: [first, second] }));
      assert.deepEqual(r.submitted[1], { taskId: first.taskId, created: false, steps: 1, deduplicated: "dropped" });
      const after = task([{ input: 3 }], { dedupe: { key: "d", windowMs: 1_000, mode: "drop" } });
      assert.equal((await store.commit(batch(T0 + 1_000, { submissions: [after] }))).submitted[0]!.created, true);

      const pending = task([{ input: "old" }], { dedupe: { key: "r", windowMs: 5_000, mode: "replace" } });
      await store.commit(batch(T0, { submissions: [pending] }));
      const replacing = task([{ input: "new" }], { dedupe: { key: "r", windowMs: 5_000, mode: "replace" } });
      const rr = await store.commit(batch(T0 + 1, { submissions: [replacing] }));
      assert.deepEqual(rr.submitted[0], { taskId: pending.taskId, created: false, steps: 1, deduplicated: "replaced" });
      assert.equal((await store.getTask(pending.taskId))!.steps[0]!.input, "new");
      await store.commit(batch(T0 + 2, { claim: claim() }));
      const late = task([{ input: "later" }], { dedupe: { key: "r", windowMs: 5_000, mode: "replace" } });
      const lr = await store.commit(batch(T0 + 3, { submissions: [late] }));
      assert.equal(lr.submitted[0]!.created, true, "a started task is not replaced: a new one is created");
      assert.equal((await store.getTask(pending.taskId))!.steps[0]!.input, "new");
      const counters = await store.counters();
      assert.deepEqual([counters["dedupe_total:dropped"], counters["dedupe_total:replaced"]], [1, 1], "each absorbed submission counted by outcome");
    });

    test("dueDeadlines: lists open tasks past their deadline; a claimed step carries the deadline; cancelTask keeps the reason", async (t) => {
      const store = await open(t);
      const tk = task([{}], { deadlineAtMs: T0 + 1_000 });
      const other = task();
      const r = await store.commit(batch(T0, { submissions: [tk, other], claim: claim() }));
      const c = r.claimed.find((x) => x.taskId === tk.taskId)!;
      assert.equal(c.deadlineAtMs, T0 + 1_000);
      assert.equal((JSON.parse(c.payloadJson) as { deadlineMs: number }).deadlineMs, T0 + 1_000);
      assert.equal(r.claimed.find((x) => x.taskId === other.taskId)!.deadlineAtMs, null);
      assert.deepEqual(await store.dueDeadlines(T0 + 999, 10), []);
      assert.deepEqual(await store.dueDeadlines(T0 + 1_000, 10), [tk.taskId]);
      const cancelled = await store.cancelTask(tk.taskId, "hard", T0 + 1_000, "deadline");
      assert.equal(cancelled!.status, "CANCELLED");
      assert.equal(cancelled!.cancelledRunning.length, 1);
      const view = (await store.getTask(tk.taskId))!;
      assert.equal(view.cancelReason, "deadline");
      assert.equal(view.deadlineAtMs, T0 + 1_000);
      assert.deepEqual(await store.dueDeadlines(T0 + 2_000, 10), []);
    });

    test("cancelTask: cancels SCHEDULED, QUEUED and THROTTLED steps too", async (t) => {
      const store = await open(t);
      const tk = task([{ id: "s", notBeforeMs: T0 + 10_000 }, { id: "q", concurrency: { key: "z", limit: 1, strategy: "queue" } },
        { id: "q2", concurrency: { key: "z", limit: 1, strategy: "queue" } }]);
      await store.commit(batch(T0, { submissions: [tk] }));
      const r = await store.cancelTask(tk.taskId, "soft", T0 + 1);
      assert.equal(r!.status, "CANCELLED");
      assert.deepEqual(r!.cancelledSteps.sort(), ["q", "q2", "s"]);
    });

    test("fireSchedule: a slot fires once: a second node's compare-and-set and a repeated slot key change nothing", async (t) => {
      const store = await open(t);
      const def: ScheduleDefinition = {
        name: "every-second", cron: "* * * * * *", timezone: null, spec: { steps: [{ id: "a", agent: "echo" }] }, overlap: "allow",
        catchUp: "none", catchUpWindowMs: null, jitterMs: 0, paused: false, nextSlotMs: T0 + 1_000, nextAtMs: T0 + 1_000,
      };
      const put = await store.putSchedule(def, T0);
      assert.equal(put.replaced, false);
      assert.equal(put.schedule.nextAtMs, T0 + 1_000);
      assert.deepEqual(await store.dueSchedules(T0 + 999, 10), []);
      const due = await store.dueSchedules(T0 + 1_000, 10);
      assert.deepEqual(due.map((s) => s.name), ["every-second"]);
      const fire = (n: string) => ({
        name: "every-second", expectNextSlotMs: T0 + 1_000, nextSlotMs: T0 + 2_000, nextAtMs: T0 + 2_000, missed: 0, nodeId: n, nowMs: T0 + 1_000,
        fires: [{ slotKey: "slot-1", slotMs: T0 + 1_000, outcome: "fired" as const, task: task() }],
      });
      const a = await store.fireSchedule(fire("a"));
      const b = await store.fireSchedule(fire("b"));
      assert.equal(a.applied, true);
      assert.equal(a.created.length, 1);
      assert.deepEqual(b, { applied: false, created: [] });
      // Even without the compare-and-set (a manual trigger reusing a slot key), the slot row stops a second task.
      const again = await store.fireSchedule({ ...fire("c"), expectNextSlotMs: undefined });
      assert.deepEqual(again.created, []);
      const s = (await store.getSchedule("every-second"))!;
      assert.equal(s.lastTaskId, a.created[0]!.taskId);
      assert.equal(s.firedCount, 1);
      assert.equal(s.nextSlotMs, T0 + 2_000);
      assert.equal((await store.getTask(a.created[0]!.taskId))!.scheduleName, "every-second");
      assert.equal((await store.listTasks({ limit: 10, offset: 0 })).total, 1);
    });

    test("putSchedule / setSchedulePaused / removeSchedule: replace keeps counts, a paused schedule is never due, remove forgets it", async (t) => {
      const store = await open(t);
      const def: ScheduleDefinition = {
        name: "s", cron: "0 * * * *", timezone: "Europe/Paris", spec: { steps: [] }, overlap: "skip", catchUp: "all",
        catchUpWindowMs: 3_600_000, jitterMs: 5_000, paused: false, nextSlotMs: T0, nextAtMs: T0 + 10,
      };
      await store.putSchedule(def, T0);
      const replaced = await store.putSchedule({ ...def, cron: "*/5 * * * *" }, T0 + 1);
      assert.equal(replaced.replaced, true);
      assert.equal(replaced.schedule.cron, "*/5 * * * *");
      assert.equal(replaced.schedule.timezone, "Europe/Paris");
      assert.equal(replaced.schedule.catchUpWindowMs, 3_600_000);
      const paused = await store.setSchedulePaused("s", true, { nextSlotMs: T0, nextAtMs: T0 + 10 }, T0 + 2);
      assert.equal(paused!.paused, true);
      assert.deepEqual(await store.dueSchedules(T0 + 1_000_000, 10), []);
      assert.equal(await store.setSchedulePaused("nope", true, { nextSlotMs: null, nextAtMs: null }, T0), null);
      assert.deepEqual((await store.listSchedules()).map((s) => s.name), ["s"]);
      assert.equal(await store.removeSchedule("s"), true);
      assert.equal(await store.removeSchedule("s"), false);
      assert.equal(await store.getSchedule("s"), null);
    });
  });
}
