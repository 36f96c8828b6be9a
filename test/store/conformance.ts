// The Store conformance suite: every store implementation must pass it unchanged. It talks to
// the Store interface only (no SQL, no dialect), and controls time through `nowMs`.
import { describe, test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import type { Store } from "../../src/store/store.js";
import type {
  ClaimedStep, CommitBatch, CommitResult, LeaseRef, NewStep, NewTask, StepRecord, TaskWithSteps,
} from "../../src/store/types.js";
import type { WireError } from "../../src/errors.js";
import { PriorityPicker } from "../../src/supervisor/picker.js";
import { flowConformance } from "./flow-conformance.js";

/**
 * Opens a fresh, migrated store; `another()` opens one more store on the same database (as
 * another process would: SQLite the same file, PostgreSQL the same schema), closed by `cleanup`.
 */
export type StoreFactory = () => Promise<{ store: Store; another(): Promise<Store>; cleanup(): Promise<void> }>;

export const NODE = "node-a";
export const OTHER = "node-b";
const LEASE_MS = 1_000;
export const T0 = 1_700_000_000_000;
const HIGH = 2, NORMAL = 1, LOW = 0;
export const ERROR: WireError = { name: "Error", code: "RELAYMESH_ERR_AGENT_FAILED", message: "boom" };


interface StepDef { id: string; dependsOn?: string[]; input?: unknown; priority?: number; maxAttempts?: number; agent?: string }

export function newTask(steps: StepDef[], extra: Partial<Omit<NewTask, "steps">> = {}): NewTask {
  const priority = extra.priority ?? NORMAL;
  return {
    taskId: randomUUID(),
    name: null,
    priority,
    idempotencyKey: null,
    failFast: false,
    traceId: randomUUID().replace(/-/g, ""),
    parentSpanId: null,
    ...extra,
    steps: steps.map((s): NewStep => ({
      stepId: s.id,
      agent: s.agent ?? "echo",
      inputJson: JSON.stringify(s.input ?? null),
      priority: s.priority ?? priority,
      dependsOn: s.dependsOn ?? [],
      maxAttempts: s.maxAttempts ?? 3,
      baseBackoffMs: 100,
      maxBackoffMs: 1_000,
      timeoutMs: null,
    })),
  };
}

export function batch(nowMs: number, parts: Partial<CommitBatch> = {}): CommitBatch {
  return {
    nowMs, nodeId: NODE, leaseTimeoutMs: LEASE_MS,
    submissions: [], completions: [], failures: [], renewals: [], releases: [],
    releaseRetriesLimit: 0, reclaimExpiredLimit: 0, claim: null,
    ...parts,
  };
}

const claimAll = (limit = 100) => ({ limit });

export function ref(c: LeaseRef): LeaseRef {
  return { stepKey: c.stepKey, taskId: c.taskId, stepId: c.stepId, leaseEpoch: c.leaseEpoch };
}

/** The `{input, deps}` of a claimed step's payload (other fields a store adds are left out). */
export function payload(c: ClaimedStep): { input: unknown; deps: Record<string, unknown> } {
  const parsed = JSON.parse(c.payloadJson) as { input: unknown; deps: Record<string, unknown> };
  assert.ok("input" in parsed && "deps" in parsed, `payload has input and deps: ${c.payloadJson}`);
  return { input: parsed.input, deps: parsed.deps };
}

function byStep(claimed: ClaimedStep[]): Record<string, ClaimedStep> {
  return Object.fromEntries(claimed.map((c) => [c.stepId, c]));
}

export async function task(store: Store, taskId: string): Promise<TaskWithSteps> {
  const t = await store.getTask(taskId);
  assert.ok(t, `task ${taskId} exists`);
  return t;
}

export async function step(store: Store, taskId: string, stepId: string): Promise<StepRecord> {
  const s = (await task(store, taskId)).steps.find((x) => x.stepId === stepId);
  assert.ok(s, `step ${stepId} of task ${taskId} exists`);
  return s;
}

async function statuses(store: Store, taskId: string): Promise<Record<string, string>> {
  return Object.fromEntries((await task(store, taskId)).steps.map((s) => [s.stepId, s.status]));
}

/** Submits one task (in its own commit) and returns its id. */
export async function submit(store: Store, t: NewTask, nowMs = T0): Promise<string> {
  const r = await store.commit(batch(nowMs, { submissions: [t] }));
  assert.deepEqual(r.submitted, [{ taskId: t.taskId, created: true, steps: t.steps.length }]);
  return t.taskId;
}

export async function claimOne(store: Store, nowMs: number, nodeId = NODE): Promise<ClaimedStep> {
  const r = await store.commit(batch(nowMs, { nodeId, claim: claimAll(1) }));
  assert.equal(r.claimed.length, 1, "one step claimed");
  return r.claimed[0]!;
}

export function storeConformance(name: string, factory: StoreFactory): void {
  flowConformance(name, factory);
  /** A fresh, migrated store for this test, closed and removed after it. */
  async function open(t: TestContext): Promise<Store> {
    const { store, cleanup } = await factory();
    t.after(cleanup);
    return store;
  }

  /** Two stores on one fresh database (two processes' view). */
  async function openTwo(t: TestContext): Promise<[Store, Store]> {
    const { store, another, cleanup } = await factory();
    t.after(cleanup);
    return [store, await another()];
  }

  describe(`Store conformance: ${name}`, () => {
    test("commit: submit then claim returns the step with payload {input, deps} and bumps lease_epoch and attempt", async (t) => {
      const store = await open(t);
      const tk = newTask([{ id: "only", input: { hello: ["world", 1] } }]);
      await submit(store, tk);
      const before = await step(store, tk.taskId, "only");
      assert.equal(before.status, "READY");
      assert.equal(before.attempt, 0);
      assert.equal((await task(store, tk.taskId)).status, "PENDING");

      const r = await store.commit(batch(T0 + 10, { claim: claimAll(10) }));
      assert.equal(r.claimed.length, 1);
      const c = r.claimed[0]!;
      assert.equal(c.taskId, tk.taskId);
      assert.equal(c.stepId, "only");
      assert.equal(c.agent, "echo");
      assert.deepEqual(payload(c), { input: { hello: ["world", 1] }, deps: {} });
      assert.equal(c.attempt, 1);
      assert.equal(c.maxAttempts, 3);
      assert.ok(c.leaseEpoch > before.leaseEpoch, `epoch ${c.leaseEpoch} > ${before.leaseEpoch}`);
      assert.equal(c.leaseExpiresAtMs, T0 + 10 + LEASE_MS);
      assert.equal(c.traceId, tk.traceId);
      assert.equal(c.priority, NORMAL);

      const after = await step(store, tk.taskId, "only");
      assert.equal(after.status, "RUNNING");
      assert.equal(after.attempt, 1);
      assert.equal(after.leaseEpoch, c.leaseEpoch);
      assert.equal(after.leaseOwner, NODE);
      assert.equal(after.leaseExpiresAtMs, T0 + 10 + LEASE_MS);
      assert.equal((await task(store, tk.taskId)).status, "RUNNING");

      // Claimed steps are not claimed twice.
      const again = await store.commit(batch(T0 + 20, { nodeId: OTHER, claim: claimAll(10) }));
      assert.deepEqual(again.claimed, []);
    });

    test("commit: a completion stores the output and finishes a one-step task as SUCCESS", async (t) => {
      const store = await open(t);
      const tk = newTask([{ id: "only", input: 1 }]);
      await submit(store, tk);
      const c = await claimOne(store, T0 + 1);
      const r = await store.commit(batch(T0 + 2, { completions: [{ ...ref(c), outputJson: JSON.stringify({ out: 42 }) }] }));
      assert.deepEqual(r.refused, []);
      assert.equal(r.outcomes.length, 1);
      assert.equal(r.outcomes[0]!.kind, "succeeded");
      assert.deepEqual(r.finishedTasks, [{ taskId: tk.taskId, status: "SUCCESS" }]);
      const done = await task(store, tk.taskId);
      assert.equal(done.status, "SUCCESS");
      assert.ok(done.finishedAtMs !== null);
      assert.equal(done.steps[0]!.status, "SUCCESS");
      assert.deepEqual(done.steps[0]!.output, { out: 42 });
      assert.deepEqual((await store.taskStatuses([tk.taskId, "no-such-task"])), new Map([[tk.taskId, "SUCCESS"]]));
    });

    test("commit: an idempotency key returns the existing task with created:false", async (t) => {
      const store = await open(t);
      const first = newTask([{ id: "a" }], { idempotencyKey: "key-1" });
      await submit(store, first);
      const second = newTask([{ id: "x" }, { id: "y" }], { idempotencyKey: "key-1" });
      const r = await store.commit(batch(T0 + 1, { submissions: [second] }));
      assert.deepEqual(r.submitted, [{ taskId: first.taskId, created: false, steps: 1 }]);
      assert.equal(await store.getTask(second.taskId), null);
      assert.equal(await store.findTaskByIdempotencyKey("key-1"), first.taskId);
      assert.equal(await store.findTaskByIdempotencyKey("key-2"), null);
      assert.equal((await store.listTasks({ limit: 10, offset: 0 })).total, 1);
      assert.equal((await task(store, first.taskId)).idempotencyKey, "key-1");

      // Twice in one batch: the second sees the first.
      const a = newTask([{ id: "a" }], { idempotencyKey: "key-3" });
      const b = newTask([{ id: "a" }], { idempotencyKey: "key-3" });
      const both = await store.commit(batch(T0 + 2, { submissions: [a, b] }));
      assert.deepEqual(both.submitted, [{ taskId: a.taskId, created: true, steps: 1 }, { taskId: a.taskId, created: false, steps: 1 }]);
      assert.equal((await store.listTasks({ limit: 10, offset: 0 })).total, 2);
    });

    test("commit: a completion unlocks dependents in the same commit, and the same batch claims them (diamond)", async (t) => {
      const store = await open(t);
      const tk = newTask([
        { id: "A", input: "a" },
        { id: "B", dependsOn: ["A"], input: "b" },
        { id: "C", dependsOn: ["A"], input: "c" },
        { id: "D", dependsOn: ["B", "C"], input: "d" },
      ]);
      await submit(store, tk);
      assert.deepEqual(await statuses(store, tk.taskId), { A: "READY", B: "WAITING", C: "WAITING", D: "WAITING" });
      const t1 = await store.commit(batch(T0 + 1, { claim: claimAll() }));
      assert.deepEqual(t1.claimed.map((c) => c.stepId), ["A"]);

      const t2 = await store.commit(batch(T0 + 2, {
        completions: [{ ...ref(t1.claimed[0]!), outputJson: JSON.stringify({ from: "A" }) }],
        claim: claimAll(),
      }));
      const claimed2 = byStep(t2.claimed);
      assert.deepEqual(Object.keys(claimed2).sort(), ["B", "C"]);
      assert.deepEqual(payload(claimed2.B!), { input: "b", deps: { A: { from: "A" } } });
      assert.deepEqual(payload(claimed2.C!), { input: "c", deps: { A: { from: "A" } } });
      assert.deepEqual(await statuses(store, tk.taskId), { A: "SUCCESS", B: "RUNNING", C: "RUNNING", D: "WAITING" });

      // D needs both: B alone does not unlock it.
      const t3 = await store.commit(batch(T0 + 3, { completions: [{ ...ref(claimed2.B!), outputJson: JSON.stringify("B out") }], claim: claimAll() }));
      assert.deepEqual(t3.claimed, []);
      assert.equal((await step(store, tk.taskId, "D")).status, "WAITING");

      const t4 = await store.commit(batch(T0 + 4, { completions: [{ ...ref(claimed2.C!), outputJson: JSON.stringify([3, "C"]) }], claim: claimAll() }));
      assert.deepEqual(t4.claimed.map((c) => c.stepId), ["D"]);
      assert.deepEqual(payload(t4.claimed[0]!), { input: "d", deps: { B: "B out", C: [3, "C"] } });
      assert.deepEqual(t4.finishedTasks, []);

      const t5 = await store.commit(batch(T0 + 5, { completions: [{ ...ref(t4.claimed[0]!), outputJson: "null" }] }));
      assert.deepEqual(t5.finishedTasks, [{ taskId: tk.taskId, status: "SUCCESS" }]);
      const done = await task(store, tk.taskId);
      assert.equal(done.status, "SUCCESS");
      assert.deepEqual(done.edges.map((e) => e.join(">")).sort(), ["A>B", "A>C", "B>D", "C>D"]);
      assert.deepEqual(done.steps.find((s) => s.stepId === "D")!.dependsOn, ["B", "C"]);
    });

    test("commit: a completion with a stale epoch or from another owner is refused, recorded, and changes nothing", async (t) => {
      const store = await open(t);
      const tk = newTask([{ id: "s" }]);
      await submit(store, tk);
      const c = await claimOne(store, T0 + 1);
      const before = await step(store, tk.taskId, "s");

      const stale = await store.commit(batch(T0 + 2, { completions: [{ ...ref(c), leaseEpoch: c.leaseEpoch - 1, outputJson: "1" }] }));
      assert.equal(stale.refused.length, 1);
      assert.deepEqual(stale.outcomes, []);
      assert.deepEqual(stale.finishedTasks, []);
      const r0 = stale.refused[0]!;
      assert.equal(r0.taskId, tk.taskId);
      assert.equal(r0.stepId, "s");
      assert.equal(r0.expectedLeaseEpoch, c.leaseEpoch - 1);
      assert.equal(r0.actualLeaseEpoch, c.leaseEpoch);
      assert.equal(r0.nodeId, NODE);
      assert.equal(r0.atMs, T0 + 2);

      const foreign = await store.commit(batch(T0 + 3, { nodeId: OTHER, completions: [{ ...ref(c), outputJson: "2" }] }));
      assert.equal(foreign.refused.length, 1);
      assert.equal(foreign.refused[0]!.nodeId, OTHER);
      assert.equal(foreign.refused[0]!.expectedLeaseEpoch, c.leaseEpoch);

      assert.deepEqual(await step(store, tk.taskId, "s"), before);
      assert.equal((await task(store, tk.taskId)).status, "RUNNING");

      const conflicts = await store.listLeaseConflicts({ sinceMs: 0, limit: 10 });
      assert.equal(conflicts.length, 2);
      // Newest first.
      assert.deepEqual(conflicts.map((x) => [x.nodeId, x.expectedLeaseEpoch, x.actualLeaseEpoch, x.atMs]), [
        [OTHER, c.leaseEpoch, c.leaseEpoch, T0 + 3],
        [NODE, c.leaseEpoch - 1, c.leaseEpoch, T0 + 2],
      ]);
      assert.ok(conflicts.every((x) => x.taskId === tk.taskId && x.stepId === "s" && x.operation.length > 0));
      assert.deepEqual(await store.listLeaseConflicts({ sinceMs: T0 + 3, limit: 10 }), [conflicts[0]]);
      assert.equal((await store.listLeaseConflicts({ sinceMs: 0, limit: 1 })).length, 1);

      // The rightful owner still completes.
      const ok = await store.commit(batch(T0 + 4, { completions: [{ ...ref(c), outputJson: "3" }] }));
      assert.deepEqual(ok.refused, []);
      assert.equal((await step(store, tk.taskId, "s")).output, 3);
    });

    test("commit: a failure or a renewal with a stale epoch or from another owner is refused, recorded, and changes nothing", async (t) => {
      const store = await open(t);
      const tk = newTask([{ id: "s" }]);
      await submit(store, tk);
      const c = await claimOne(store, T0 + 1);
      const before = await step(store, tk.taskId, "s");
      const r = await store.commit(batch(T0 + 500, {
        failures: [
          { ...ref(c), leaseEpoch: c.leaseEpoch - 1, attempt: 1, error: ERROR, next: { kind: "dead" } },
          { ...ref(c), leaseEpoch: c.leaseEpoch + 1, attempt: 1, error: ERROR, next: { kind: "retry", atMs: T0 + 600 } },
        ],
        renewals: [{ ...ref(c), leaseEpoch: c.leaseEpoch - 1 }],
      }));
      const r2 = await store.commit(batch(T0 + 501, {
        nodeId: OTHER,
        failures: [{ ...ref(c), attempt: 1, error: ERROR, next: { kind: "dead" } }],
        renewals: [ref(c)],
      }));
      assert.equal(r.refused.length, 3);
      assert.equal(r2.refused.length, 2);
      assert.deepEqual([...r.outcomes, ...r2.outcomes], []);
      assert.deepEqual([...r.finishedTasks, ...r2.finishedTasks], []);
      const after = await step(store, tk.taskId, "s");
      assert.deepEqual(after, before, "the step is unchanged (status, epoch, owner and lease expiry)");
      assert.equal((await task(store, tk.taskId)).status, "RUNNING");
      const conflicts = await store.listLeaseConflicts({ sinceMs: 0, limit: 10 });
      assert.equal(conflicts.length, 5);
      assert.deepEqual(conflicts.map((x) => x.expectedLeaseEpoch).sort(), [c.leaseEpoch - 1, c.leaseEpoch - 1, c.leaseEpoch, c.leaseEpoch, c.leaseEpoch + 1].sort());
      assert.ok(conflicts.every((x) => x.actualLeaseEpoch === c.leaseEpoch));
      assert.equal(new Set(conflicts.map((x) => x.operation)).size, 2, "failures and renewals are told apart");

      // The rightful renewal extends the lease.
      const ok = await store.commit(batch(T0 + 700, { renewals: [ref(c)] }));
      assert.deepEqual(ok.refused, []);
      assert.equal((await step(store, tk.taskId, "s")).leaseExpiresAtMs, T0 + 700 + LEASE_MS);
    });

    test("commit: a dead step skips its transitive dependents, independent branches run on, then the task is DEAD_LETTER", async (t) => {
      const store = await open(t);
      const tk = newTask([
        { id: "A" },
        { id: "B", dependsOn: ["A"] },
        { id: "C", dependsOn: ["B"] },
        { id: "D" },
        { id: "E", dependsOn: ["D"] },
        { id: "F", dependsOn: ["C", "E"] },
      ]);
      await submit(store, tk);
      const first = byStep((await store.commit(batch(T0 + 1, { claim: claimAll() }))).claimed);
      assert.deepEqual(Object.keys(first).sort(), ["A", "D"]);

      const dead = await store.commit(batch(T0 + 2, {
        failures: [{ ...ref(first.A!), attempt: 1, error: ERROR, next: { kind: "dead" } }],
        claim: claimAll(),
      }));
      assert.deepEqual(dead.outcomes.map((o) => [o.kind, o.ref.stepId]), [["dead", "A"]]);
      assert.deepEqual(dead.claimed, []);
      assert.deepEqual(dead.finishedTasks, []);
      assert.deepEqual(await statuses(store, tk.taskId), { A: "DEAD_LETTER", B: "SKIPPED", C: "SKIPPED", D: "RUNNING", E: "WAITING", F: "SKIPPED" });
      const a = await step(store, tk.taskId, "A");
      assert.equal(a.error?.message, "boom");
      assert.equal(a.error?.code, ERROR.code);
      assert.equal((await task(store, tk.taskId)).status, "RUNNING");

      const d = await store.commit(batch(T0 + 3, { completions: [{ ...ref(first.D!), outputJson: "1" }], claim: claimAll() }));
      assert.deepEqual(d.claimed.map((c) => c.stepId), ["E"], "the independent branch runs on; F stays skipped");
      assert.deepEqual(d.finishedTasks, []);

      const e = await store.commit(batch(T0 + 4, { completions: [{ ...ref(d.claimed[0]!), outputJson: "2" }], claim: claimAll() }));
      assert.deepEqual(e.claimed, []);
      assert.deepEqual(e.finishedTasks, [{ taskId: tk.taskId, status: "DEAD_LETTER" }]);
      assert.deepEqual(await statuses(store, tk.taskId), { A: "DEAD_LETTER", B: "SKIPPED", C: "SKIPPED", D: "SUCCESS", E: "SUCCESS", F: "SKIPPED" });
      assert.equal((await task(store, tk.taskId)).status, "DEAD_LETTER");
    });

    test("commit: a task whose only runnable step dies ends DEAD_LETTER in that commit", async (t) => {
      const store = await open(t);
      const tk = newTask([{ id: "A" }, { id: "B", dependsOn: ["A"] }]);
      await submit(store, tk);
      const c = await claimOne(store, T0 + 1);
      const r = await store.commit(batch(T0 + 2, { failures: [{ ...ref(c), attempt: 1, error: ERROR, next: { kind: "dead" } }] }));
      assert.deepEqual(r.finishedTasks, [{ taskId: tk.taskId, status: "DEAD_LETTER" }]);
      assert.deepEqual(await statuses(store, tk.taskId), { A: "DEAD_LETTER", B: "SKIPPED" });
    });

    test("commit: failFast cancels the rest at the first dead step and returns running ones in cancelledRunning", async (t) => {
      const store = await open(t);
      const tk = newTask([{ id: "A" }, { id: "B" }, { id: "C" }, { id: "D", dependsOn: ["A"] }], { failFast: true });
      await submit(store, tk);
      const first = byStep((await store.commit(batch(T0 + 1, { claim: claimAll(2) }))).claimed);
      assert.deepEqual(Object.keys(first).sort(), ["A", "B"]);

      const r = await store.commit(batch(T0 + 2, {
        failures: [{ ...ref(first.A!), attempt: 1, error: ERROR, next: { kind: "dead" } }],
        claim: claimAll(),
      }));
      assert.deepEqual(r.cancelledRunning.map((x) => [x.taskId, x.stepId, x.stepKey]), [[tk.taskId, "B", first.B!.stepKey]]);
      assert.deepEqual(r.claimed, [], "nothing of a failed-fast task is claimed");
      assert.deepEqual(r.finishedTasks, [{ taskId: tk.taskId, status: "DEAD_LETTER" }]);
      assert.deepEqual(await statuses(store, tk.taskId), { A: "DEAD_LETTER", B: "CANCELLED", C: "CANCELLED", D: "CANCELLED" });

      // The cancelled step's late result is refused and does not revive it.
      const late = await store.commit(batch(T0 + 3, { completions: [{ ...ref(first.B!), outputJson: "1" }] }));
      assert.equal(late.refused.length, 1);
      assert.equal((await step(store, tk.taskId, "B")).status, "CANCELLED");
      assert.equal((await task(store, tk.taskId)).status, "DEAD_LETTER");
    });

    test("commit: a retry puts the step in RETRY_WAIT until atMs, and releaseRetries makes it READY after", async (t) => {
      const store = await open(t);
      const tk = newTask([{ id: "s", input: "again" }]);
      await submit(store, tk);
      const c = await claimOne(store, T0 + 1);
      const atMs = T0 + 500;
      const r = await store.commit(batch(T0 + 2, { failures: [{ ...ref(c), attempt: 1, error: ERROR, next: { kind: "retry", atMs } }] }));
      assert.equal(r.outcomes.length, 1);
      const o = r.outcomes[0]!;
      assert.equal(o.kind, "retrying");
      assert.equal(o.kind === "retrying" ? o.atMs : null, atMs);
      assert.equal(r.nextRetryAtMs, atMs);
      assert.deepEqual(r.finishedTasks, []);
      const waiting = await step(store, tk.taskId, "s");
      assert.equal(waiting.status, "RETRY_WAIT");
      assert.equal(waiting.error?.message, "boom");
      assert.equal((await task(store, tk.taskId)).status, "RUNNING");

      // Not due yet: nothing to release or claim.
      const early = await store.commit(batch(atMs - 1, { releaseRetriesLimit: 10, claim: claimAll() }));
      assert.deepEqual(early.claimed, []);
      assert.equal((await step(store, tk.taskId, "s")).status, "RETRY_WAIT");
      assert.equal(early.nextRetryAtMs, atMs);

      // Due, but releaseRetriesLimit 0: stays.
      await store.commit(batch(atMs + 1, { releaseRetriesLimit: 0 }));
      assert.equal((await step(store, tk.taskId, "s")).status, "RETRY_WAIT");

      const due = await store.commit(batch(atMs, { releaseRetriesLimit: 10 }));
      assert.equal(due.nextRetryAtMs, null);
      assert.equal((await step(store, tk.taskId, "s")).status, "READY");

      const again = await claimOne(store, atMs + 2);
      assert.equal(again.attempt, 2);
      assert.ok(again.leaseEpoch > c.leaseEpoch);
      assert.deepEqual(payload(again), { input: "again", deps: {} });
    });

    test("commit: releaseRetries moves at most releaseRetriesLimit due steps", async (t) => {
      const store = await open(t);
      const tk = newTask([{ id: "a" }, { id: "b" }, { id: "c" }]);
      await submit(store, tk);
      const claimed = (await store.commit(batch(T0 + 1, { claim: claimAll() }))).claimed;
      assert.equal(claimed.length, 3);
      await store.commit(batch(T0 + 2, { failures: claimed.map((c) => ({ ...ref(c), attempt: 1, error: ERROR, next: { kind: "retry" as const, atMs: T0 + 10 } })) }));
      await store.commit(batch(T0 + 20, { releaseRetriesLimit: 2 }));
      const s = Object.values(await statuses(store, tk.taskId)).sort();
      assert.deepEqual(s, ["READY", "READY", "RETRY_WAIT"]);
    });

    test("commit: reclaimExpired makes an expired RUNNING step READY with a higher epoch; the old owner's late completion is refused", async (t) => {
      const store = await open(t);
      const tk = newTask([{ id: "s" }]);
      await submit(store, tk);
      const c = await claimOne(store, T0);
      // Not expired yet.
      const early = await store.commit(batch(T0 + LEASE_MS - 1, { nodeId: OTHER, reclaimExpiredLimit: 10 }));
      assert.equal(early.reclaimed, 0);
      assert.equal((await step(store, tk.taskId, "s")).status, "RUNNING");

      const r = await store.commit(batch(T0 + LEASE_MS + 1, { nodeId: OTHER, reclaimExpiredLimit: 10 }));
      assert.equal(r.reclaimed, 1);
      const reclaimed = await step(store, tk.taskId, "s");
      assert.equal(reclaimed.status, "READY");
      assert.ok(reclaimed.leaseEpoch > c.leaseEpoch, `epoch ${reclaimed.leaseEpoch} > ${c.leaseEpoch}`);

      const late = await store.commit(batch(T0 + LEASE_MS + 2, { completions: [{ ...ref(c), outputJson: "\"zombie\"" }] }));
      assert.equal(late.refused.length, 1);
      assert.equal(late.refused[0]!.expectedLeaseEpoch, c.leaseEpoch);
      assert.equal(late.refused[0]!.actualLeaseEpoch, reclaimed.leaseEpoch);
      assert.equal((await step(store, tk.taskId, "s")).status, "READY");

      const winner = await claimOne(store, T0 + LEASE_MS + 3, OTHER);
      assert.equal(winner.attempt, 2);
      assert.ok(winner.leaseEpoch > reclaimed.leaseEpoch);
      const zombie2 = await store.commit(batch(T0 + LEASE_MS + 4, { completions: [{ ...ref(c), outputJson: "\"zombie\"" }] }));
      assert.equal(zombie2.refused.length, 1);
      const done = await store.commit(batch(T0 + LEASE_MS + 5, { nodeId: OTHER, completions: [{ ...ref(winner), outputJson: "\"winner\"" }] }));
      assert.deepEqual(done.refused, []);
      const final = await step(store, tk.taskId, "s");
      assert.equal(final.status, "SUCCESS");
      assert.equal(final.output, "winner");
    });

    test("commit: a renewed lease is not reclaimed", async (t) => {
      const store = await open(t);
      const tk = newTask([{ id: "s" }]);
      await submit(store, tk);
      const c = await claimOne(store, T0);
      await store.commit(batch(T0 + LEASE_MS - 10, { renewals: [ref(c)] }));
      const r = await store.commit(batch(T0 + LEASE_MS + 1, { nodeId: OTHER, reclaimExpiredLimit: 10 }));
      assert.equal(r.reclaimed, 0);
      assert.equal((await step(store, tk.taskId, "s")).status, "RUNNING");
    });

    test("commit: reclaimExpired dead-letters an expired step whose attempts are exhausted", async (t) => {
      const store = await open(t);
      const tk = newTask([{ id: "s", maxAttempts: 1 }, { id: "after", dependsOn: ["s"] }]);
      await submit(store, tk);
      const c = await claimOne(store, T0);
      const r = await store.commit(batch(T0 + LEASE_MS + 1, { nodeId: OTHER, reclaimExpiredLimit: 10, claim: claimAll() }));
      assert.equal(r.reclaimed, 1);
      assert.deepEqual(r.claimed, []);
      assert.deepEqual(r.finishedTasks, [{ taskId: tk.taskId, status: "DEAD_LETTER" }]);
      const s = await step(store, tk.taskId, "s");
      assert.equal(s.status, "DEAD_LETTER");
      assert.ok(s.error, "the dead step records why");
      assert.ok(s.leaseEpoch > c.leaseEpoch);
      assert.equal((await step(store, tk.taskId, "after")).status, "SKIPPED");
      const late = await store.commit(batch(T0 + LEASE_MS + 2, { completions: [{ ...ref(c), outputJson: "1" }] }));
      assert.equal(late.refused.length, 1);
      assert.equal((await task(store, tk.taskId)).status, "DEAD_LETTER");
    });

    test("commit: reclaimExpiredLimit bounds the reclaim and 0 skips it", async (t) => {
      const store = await open(t);
      const tk = newTask([{ id: "a" }, { id: "b" }, { id: "c" }]);
      await submit(store, tk);
      assert.equal((await store.commit(batch(T0, { claim: claimAll() }))).claimed.length, 3);
      assert.equal((await store.commit(batch(T0 + 5 * LEASE_MS, { reclaimExpiredLimit: 0 }))).reclaimed, 0);
      assert.equal((await store.commit(batch(T0 + 5 * LEASE_MS, { reclaimExpiredLimit: 2 }))).reclaimed, 2);
      assert.equal((await store.commit(batch(T0 + 5 * LEASE_MS, { reclaimExpiredLimit: 2 }))).reclaimed, 1);
    });

    test("commit: a release gives the lease back without counting the attempt", async (t) => {
      const store = await open(t);
      const tk = newTask([{ id: "s" }]);
      await submit(store, tk);
      const c = await claimOne(store, T0 + 1);
      assert.equal(c.attempt, 1);
      const r = await store.commit(batch(T0 + 2, { releases: [ref(c)] }));
      assert.equal(r.released, 1);
      assert.deepEqual(r.refused, []);
      const s = await step(store, tk.taskId, "s");
      assert.equal(s.status, "READY");
      assert.equal(s.attempt, 0);
      assert.equal(s.leaseOwner, null);
      assert.ok(s.leaseEpoch > c.leaseEpoch, "a release is an ownership change");

      // The old lease is fenced off.
      const late = await store.commit(batch(T0 + 3, { completions: [{ ...ref(c), outputJson: "1" }] }));
      assert.equal(late.refused.length, 1);

      const again = await claimOne(store, T0 + 4, OTHER);
      assert.equal(again.attempt, 1, "the released attempt was not counted");

      // A release by a node that does not own the lease is refused.
      const foreign = await store.commit(batch(T0 + 5, { releases: [ref(again)] }));
      assert.equal(foreign.released, 0);
      assert.equal(foreign.refused.length, 1);
      assert.equal((await step(store, tk.taskId, "s")).status, "RUNNING");
    });

    test("commit: claims follow priority, high before normal before low", async (t) => {
      const store = await open(t);
      const low = newTask([{ id: "s" }], { priority: LOW });
      const normal = newTask([{ id: "s" }], { priority: NORMAL });
      const high = newTask([{ id: "s" }], { priority: HIGH });
      // Submitted lowest first, so age alone would give the opposite order.
      await submit(store, low, T0);
      await submit(store, normal, T0 + 1);
      await submit(store, high, T0 + 2);
      const order: string[] = [];
      for (let i = 0; i < 3; i++) {
        const r = await store.commit(batch(T0 + 10 + i, { claim: { limit: 1 } }));
        assert.equal(r.claimed.length, 1);
        order.push(r.claimed[0]!.taskId);
      }
      assert.deepEqual(order, [high.taskId, normal.taskId, low.taskId]);

      // Within one claim too, and a step's own priority counts, not only its task's.
      const mixed = newTask([{ id: "l", priority: LOW }, { id: "h", priority: HIGH }, { id: "n", priority: NORMAL }]);
      await submit(store, mixed, T0 + 20);
      const r = await store.commit(batch(T0 + 21, { claim: claimAll(10) }));
      assert.deepEqual(r.claimed.map((c) => [c.stepId, c.priority]), [["h", HIGH], ["n", NORMAL], ["l", LOW]]);
    });

    test("commit: within a priority, older READY steps are claimed first", async (t) => {
      const store = await open(t);
      const ids: string[] = [];
      for (let i = 0; i < 4; i++) ids.push(await submit(store, newTask([{ id: "s" }]), T0 + i));
      const r = await store.commit(batch(T0 + 10, { claim: claimAll(2) }));
      assert.deepEqual(r.claimed.map((c) => c.taskId), ids.slice(0, 2));
    });

    test("commit: a claim takes its quotas first, then by priority; quota picks that jumped a higher class are counted as low_starvation_count", async (t) => {
      const store = await open(t);
      const lows = [newTask([{ id: "s" }], { priority: LOW }), newTask([{ id: "s" }], { priority: LOW })];
      const high1 = newTask([{ id: "s" }], { priority: HIGH });
      const high2 = newTask([{ id: "s" }], { priority: HIGH });
      await store.commit(batch(T0, { submissions: [...lows, high1, high2] }));
      const before = (await store.counters()).low_starvation_count ?? 0;

      const r = await store.commit(batch(T0 + 1, { claim: { limit: 2, quotas: [1, 0, 0] } }));
      assert.deepEqual(r.claimed.map((c) => c.taskId), [lows[0]!.taskId, high1.taskId]);
      assert.deepEqual(r.claimBacklog, [true, false, true], "a low and a high are left");
      assert.equal((await store.counters()).low_starvation_count, before + 1);

      // A quota with no higher class waiting is no forced pick.
      const r2 = await store.commit(batch(T0 + 2, { claim: { limit: 5, quotas: [1, 0, 0] } }));
      assert.deepEqual(r2.claimed.map((c) => c.taskId), [lows[1]!.taskId, high2.taskId]);
      assert.deepEqual(r2.claimBacklog, [false, false, false]);
      assert.equal((await store.counters()).low_starvation_count, before + 2, "the low jumped the high claimed after it");
      const r3 = await store.commit(batch(T0 + 3, { submissions: [newTask([{ id: "s" }], { priority: LOW })], claim: { limit: 5, quotas: [1, 0, 0] } }));
      assert.equal(r3.claimed.length, 1);
      assert.equal((await store.counters()).low_starvation_count, before + 2);
    });

    test("commit: with PriorityPicker, a starving low step is forced through and counted", async (t) => {
      const store = await open(t);
      const lows = [newTask([{ id: "s" }], { priority: LOW }), newTask([{ id: "s" }], { priority: LOW })];
      const highs = [0, 1, 2, 3].map(() => newTask([{ id: "s" }], { priority: HIGH }));
      await store.commit(batch(T0, { submissions: [...lows, ...highs] }));
      const picker = new PriorityPicker(2);
      const claimed: ClaimedStep[] = [];
      for (let i = 0; i < 3; i++) {
        const r = await store.commit(batch(T0 + 1 + i, { claim: picker.plan(1) }));
        claimed.push(...picker.record(r.claimed.map((c) => c.priority), r.claimBacklog).map((i) => r.claimed[i]!));
      }
      assert.deepEqual(claimed.map((c) => c.priority), [HIGH, HIGH, LOW]);
      assert.equal(claimed[2]!.taskId, lows[0]!.taskId);
      assert.equal((await store.counters()).low_starvation_count, 1);
    });

    test("commit: a claim never exceeds its limit", async (t) => {
      const store = await open(t);
      await store.commit(batch(T0, { submissions: [newTask([{ id: "a" }, { id: "b" }, { id: "c" }, { id: "d" }, { id: "e" }])] }));
      assert.equal((await store.commit(batch(T0 + 1, { claim: claimAll(2) }))).claimed.length, 2);
      assert.equal((await store.commit(batch(T0 + 2, { claim: claimAll(0) }))).claimed.length, 0);
      assert.equal((await store.commit(batch(T0 + 3, { claim: claimAll(10) }))).claimed.length, 3);
    });

    test("listTasks: newest first, filtered by status, paged, with the total matching", async (t) => {
      const store = await open(t);
      const ids: string[] = [];
      for (let i = 0; i < 5; i++) ids.push(await submit(store, newTask([{ id: "s" }], { name: `t${i}` }), T0 + i * 10));
      // Finish the oldest one.
      const c = await claimOne(store, T0 + 100);
      assert.equal(c.taskId, ids[0]);
      await store.commit(batch(T0 + 101, { completions: [{ ...ref(c), outputJson: "1" }] }));

      const page1 = await store.listTasks({ limit: 2, offset: 0 });
      assert.equal(page1.total, 5);
      assert.deepEqual(page1.tasks.map((x) => x.taskId), [ids[4], ids[3]]);
      const page2 = await store.listTasks({ limit: 2, offset: 2 });
      assert.deepEqual(page2.tasks.map((x) => x.taskId), [ids[2], ids[1]]);
      const page3 = await store.listTasks({ limit: 2, offset: 4 });
      assert.deepEqual(page3.tasks.map((x) => x.taskId), [ids[0]]);
      assert.equal(page3.total, 5);
      const beyond = await store.listTasks({ limit: 2, offset: 10 });
      assert.deepEqual(beyond.tasks, []);
      assert.equal(beyond.total, 5);

      const done = await store.listTasks({ status: "SUCCESS", limit: 10, offset: 0 });
      assert.equal(done.total, 1);
      assert.deepEqual(done.tasks.map((x) => [x.taskId, x.status, x.name]), [[ids[0], "SUCCESS", "t0"]]);
      const pending = await store.listTasks({ status: "PENDING", limit: 2, offset: 1 });
      assert.equal(pending.total, 4);
      assert.deepEqual(pending.tasks.map((x) => x.taskId), [ids[3], ids[2]]);
      const none = await store.listTasks({ status: "CANCELLED", limit: 10, offset: 0 });
      assert.deepEqual(none, { tasks: [], total: 0 });
      const rec = pending.tasks[0]!;
      assert.equal(rec.createdAtMs, T0 + 30);
      assert.equal(rec.priority, NORMAL);
      assert.equal(rec.failFast, false);
    });

    test("getTask: an unknown id is null", async (t) => {
      const store = await open(t);
      assert.equal(await store.getTask("00000000-0000-0000-0000-000000000000"), null);
      assert.deepEqual(await store.taskStatuses(["nope"]), new Map());
    });

    test("getTask: returns the task with its steps, inputs and edges as submitted", async (t) => {
      const store = await open(t);
      const tk = newTask([{ id: "a", input: { deep: { list: [1, "two", null] } }, priority: HIGH }, { id: "b", dependsOn: ["a"], agent: "collect" }],
        { name: "named", failFast: true, idempotencyKey: "idem" });
      await submit(store, tk, T0 + 7);
      const got = await task(store, tk.taskId);
      assert.equal(got.taskId, tk.taskId);
      assert.equal(got.name, "named");
      assert.equal(got.status, "PENDING");
      assert.equal(got.failFast, true);
      assert.equal(got.idempotencyKey, "idem");
      assert.equal(got.traceId, tk.traceId);
      assert.equal(got.createdAtMs, T0 + 7);
      assert.deepEqual(got.steps.map((s) => s.stepId), ["a", "b"]);
      assert.deepEqual(got.steps[0]!.input, { deep: { list: [1, "two", null] } });
      assert.equal(got.steps[0]!.priority, HIGH);
      assert.equal(got.steps[1]!.agent, "collect");
      assert.equal(got.steps[1]!.maxAttempts, 3);
      assert.deepEqual(got.steps[1]!.dependsOn, ["a"]);
      assert.deepEqual(got.edges, [["a", "b"]]);
      assert.equal(got.steps[0]!.output, null);
      assert.equal(got.steps[0]!.error, null);
    });

    test("claim: a claimed step says how many steps of its task depend on it", async (t) => {
      const store = await open(t);
      await submit(store, newTask([{ id: "a" }, { id: "b", dependsOn: ["a"] }, { id: "c", dependsOn: ["a"] }, { id: "d", dependsOn: ["b", "c"] }]));
      const a = await claimOne(store, T0 + 1);
      assert.equal(a.dependents, 2);
      const next = await store.commit(batch(T0 + 2, { completions: [{ ...ref(a), outputJson: "1", dependents: a.dependents }], claim: claimAll() }));
      assert.deepEqual(next.claimed.map((c) => [c.stepId, c.dependents]).sort(), [["b", 1], ["c", 1]]);
      const last = await store.commit(batch(T0 + 3, { completions: next.claimed.map((c) => ({ ...ref(c), outputJson: "1", dependents: c.dependents })), claim: claimAll() }));
      assert.deepEqual(last.claimed.map((c) => [c.stepId, c.dependents]), [["d", 0]]);
    });

    test("commit: an empty batch changes nothing and returns empty results", async (t) => {
      const store = await open(t);
      const r: CommitResult = await store.commit(batch(T0));
      assert.deepEqual(r.submitted, []);
      assert.deepEqual(r.claimed, []);
      assert.deepEqual(r.refused, []);
      assert.deepEqual(r.finishedTasks, []);
      assert.equal(r.reclaimed, 0);
      assert.equal(r.released, 0);
      assert.equal(r.nextRetryAtMs, null);
    });

    test("purge: removes exactly the finished tasks, dead letters and idempotency keys past their retention", async (t) => {
      const store = await open(t);
      const DAY = 86_400_000;
      const old = T0, recent = T0 + 10 * DAY;
      const finish = async (at: number, fail: boolean, key: string | null) => {
        const tk = newTask([{ id: "s", maxAttempts: 1 }], { idempotencyKey: key });
        await store.commit(batch(at, { submissions: [tk] }));
        const c = await claimOne(store, at);
        await store.commit(batch(at, fail
          ? { failures: [{ ...ref(c), attempt: 1, error: ERROR, next: { kind: "dead" } }] }
          : { completions: [{ ...ref(c), outputJson: "1" }] }));
        return tk.taskId;
      };
      const oldDone = await finish(old, false, "k-old");
      const oldDead = await finish(old, true, null);
      const newDone = await finish(recent, false, "k-new");
      const newDead = await finish(recent, true, null);
      const running = newTask([{ id: "s" }], { idempotencyKey: "k-running" });
      await store.commit(batch(old, { submissions: [running] }));
      await claimOne(store, old);
      await store.commit(batch(old, { kvWrites: [{ ref: null, namespace: oldDone, entries: [{ key: "c", valueJson: "1" }], writer: "test" }] }));

      const counts = await store.purge({ finishedBeforeMs: recent - DAY, deadBeforeMs: old - DAY, idempotencyBeforeMs: recent - DAY });
      assert.deepEqual(counts, { finishedTasks: 1, deadLetters: 0, idempotencyKeys: 1 });
      assert.equal(await store.getTask(oldDone), null);
      assert.ok(await store.getTask(oldDead), "dead letters have a retention of their own");
      assert.ok(await store.getTask(newDone));
      assert.ok(await store.getTask(newDead));
      assert.ok(await store.getTask(running.taskId), "unfinished tasks are never purged");
      assert.equal(await store.kvGet(oldDone, "c"), null, "a purged task's checkpoints go with it");
      assert.equal(await store.findTaskByIdempotencyKey("k-running"), null, "the key of a task older than the TTL is forgotten");
      assert.equal(await store.findTaskByIdempotencyKey("k-new"), newDone);

      const dead = await store.purge({ finishedBeforeMs: 0, deadBeforeMs: recent + 1, idempotencyBeforeMs: 0 });
      assert.deepEqual(dead, { finishedTasks: 0, deadLetters: 2, idempotencyKeys: 0 });
    });

    test("purge: namePrefix limits it to tasks whose name starts with the prefix (benchmark tasks run in place)", async (t) => {
      const store = await open(t);
      const finish = async (name: string | null, fail: boolean) => {
        const tk = newTask([{ id: "s", maxAttempts: 1 }], { name, idempotencyKey: `k-${randomUUID()}` });
        await store.commit(batch(T0, { submissions: [tk] }));
        const c = await claimOne(store, T0);
        await store.commit(batch(T0, fail
          ? { failures: [{ ...ref(c), attempt: 1, error: ERROR, next: { kind: "dead" } }] }
          : { completions: [{ ...ref(c), outputJson: "1" }] }));
        return tk.taskId;
      };
      const benchDone = await finish("bench:run1", false);
      const benchDead = await finish("bench:run1", true);
      const otherRun = await finish("bench:run2", false);
      const real = await finish("nightly", false);
      const unnamed = await finish(null, false);
      const open1 = newTask([{ id: "s" }], { name: "bench:run1", idempotencyKey: "k-open" });
      await store.commit(batch(T0, { submissions: [open1] }));
      const everything = { finishedBeforeMs: T0 + 1, deadBeforeMs: T0 + 1, idempotencyBeforeMs: T0 + 1 };

      assert.deepEqual(await store.purge({ ...everything, namePrefix: "bench:run1" }), { finishedTasks: 1, deadLetters: 1, idempotencyKeys: 1 });
      assert.equal(await store.getTask(benchDone), null);
      assert.equal(await store.getTask(benchDead), null);
      assert.ok(await store.getTask(open1.taskId), "unfinished tasks are never purged");
      for (const id of [otherRun, real, unnamed]) assert.ok(await store.getTask(id), "tasks of other names stay");
      assert.deepEqual(await store.purge({ ...everything, namePrefix: "bench:" }), { finishedTasks: 1, deadLetters: 0, idempotencyKeys: 0 });
      assert.equal(await store.getTask(otherRun), null);
      assert.ok(await store.getTask(real));
      assert.ok((await store.getTask(real))!.idempotencyKey !== null, "keys of other names are kept");
      assert.ok(await store.getTask(unnamed));
    });

    test("cancelTask: hard cancels running steps (a late result is refused); soft lets them finish", async (t) => {
      const store = await open(t);
      const hard = newTask([{ id: "a" }, { id: "b", dependsOn: ["a"] }]);
      await submit(store, hard);
      const running = await claimOne(store, T0);
      const r = await store.cancelTask(hard.taskId, "hard", T0 + 1);
      assert.deepEqual(r!.cancelledSteps.sort(), ["a", "b"]);
      assert.equal(r!.status, "CANCELLED");
      assert.deepEqual(r!.cancelledRunning.map((x) => x.stepId), ["a"]);
      const late = await store.commit(batch(T0 + 2, { completions: [{ ...ref(running), outputJson: "1" }] }));
      assert.equal(late.refused.length, 1);
      assert.equal((await step(store, hard.taskId, "a")).status, "CANCELLED");
      assert.equal((await task(store, hard.taskId)).status, "CANCELLED");

      const soft = newTask([{ id: "a" }, { id: "b", dependsOn: ["a"] }]);
      await submit(store, soft);
      const a = await claimOne(store, T0);
      const s2 = await store.cancelTask(soft.taskId, "soft", T0 + 1);
      assert.deepEqual(s2!.cancelledSteps, ["b"]);
      assert.equal(s2!.status, "RUNNING");
      const done = await store.commit(batch(T0 + 2, { completions: [{ ...ref(a), outputJson: "1" }] }));
      assert.deepEqual(done.refused, []);
      assert.deepEqual(done.finishedTasks, [{ taskId: soft.taskId, status: "CANCELLED" }]);
      assert.equal(await store.cancelTask("missing", "hard", T0), null);
    });

    test("replayTask: dead steps run again in a new round, skipped ones wait again, successes keep their outputs", async (t) => {
      const store = await open(t);
      const tk = newTask([{ id: "a" }, { id: "b", dependsOn: ["a"], maxAttempts: 1 }, { id: "c", dependsOn: ["a"] }, { id: "d", dependsOn: ["b", "c"] }]);
      await submit(store, tk);
      const a = await claimOne(store, T0);
      const r1 = await store.commit(batch(T0, { completions: [{ ...ref(a), outputJson: '"A"' }], claim: claimAll() }));
      const { b, c } = byStep(r1.claimed);
      await store.commit(batch(T0, { completions: [{ ...ref(c!), outputJson: '"C"' }], failures: [{ ...ref(b!), attempt: 1, error: ERROR, next: { kind: "dead" } }] }));
      assert.equal((await task(store, tk.taskId)).status, "DEAD_LETTER");
      assert.equal((await store.replayTask(tk.taskId, T0 + 1))!.replayed, true);
      const t1 = await task(store, tk.taskId);
      assert.equal(t1.status, "RUNNING");
      const st = Object.fromEntries(t1.steps.map((x) => [x.stepId, x]));
      assert.deepEqual([st.a!.status, st.b!.status, st.c!.status, st.d!.status], ["SUCCESS", "READY", "SUCCESS", "WAITING"]);
      assert.equal(st.b!.attempt, 0);
      assert.equal(st.c!.output, "C");
      const again = await claimOne(store, T0 + 2);
      assert.equal(again.stepId, "b");
      assert.equal(again.attempt, 1);
      const end = await store.commit(batch(T0 + 3, { completions: [{ ...ref(again), outputJson: '"B"' }], claim: claimAll() }));
      assert.deepEqual(payload(end.claimed[0]!).deps, { b: "B", c: "C" });
      const notDead = await store.replayTask(tk.taskId, T0 + 4);
      assert.equal(notDead!.replayed, false);
    });

    test("kv: fenced writes apply only under the writer's lease; the claim payload carries the task's checkpoints", async (t) => {
      const store = await open(t);
      const tk = newTask([{ id: "s" }]);
      await submit(store, tk);
      const first = await claimOne(store, T0);
      const w = (c: ClaimedStep, value: string) => ({ ref: ref(c), namespace: tk.taskId, entries: [{ key: "progress", valueJson: value }], writer: `step@${c.leaseEpoch}` });
      const ok = await store.commit(batch(T0, { kvWrites: [w(first, "1")] }));
      assert.deepEqual(ok.kvResults, ["ok"]);
      // The lease expires and another node takes the step: it sees the checkpoint.
      await store.commit(batch(T0 + LEASE_MS + 1, { nodeId: OTHER, reclaimExpiredLimit: 10 }));
      const second = await claimOne(store, T0 + LEASE_MS + 2, OTHER);
      assert.deepEqual((JSON.parse(second.payloadJson) as { kv: unknown }).kv, { progress: 1 });
      const zombie = await store.commit(batch(T0 + LEASE_MS + 3, { kvWrites: [w(first, "99")] }));
      assert.deepEqual(zombie.kvResults, ["refused"]);
      assert.equal(zombie.refused[0]!.operation, "checkpoint");
      assert.equal((await store.kvGet(tk.taskId, "progress"))!.value, 1);
      const winner = await store.commit(batch(T0 + LEASE_MS + 4, { nodeId: OTHER, kvWrites: [w(second, "2")] }));
      assert.deepEqual(winner.kvResults, ["ok"]);
      const changes = await store.kvChanges(tk.taskId, 0, 10);
      assert.deepEqual(changes.map((x) => [x.key, x.value, x.deleted]), [["progress", 2, false]]);
      await store.commit(batch(T0 + LEASE_MS + 5, { kvWrites: [{ ref: null, namespace: tk.taskId, entries: [{ key: "progress", valueJson: null }], writer: "op" }] }));
      assert.equal(await store.kvGet(tk.taskId, "progress"), null);
      const del = await store.kvChanges(tk.taskId, changes[0]!.version, 10);
      assert.deepEqual(del.map((x) => [x.key, x.deleted]), [["progress", true]]);
      assert.deepEqual((await store.kvList(tk.taskId, { limit: 10 })).length, 0);
    });

    test("two stores on one database never claim the same step", async (t) => {
      const [a, b] = await openTwo(t);
      const tasks = Array.from({ length: 60 }, () => newTask([{ id: "s" }]));
      await a.commit(batch(T0, { submissions: tasks }));
      const claimedBy = new Map<string, string>();
      const worker = async (store: Store, nodeId: string) => {
        for (;;) {
          const r = await store.commit(batch(T0 + 1, { nodeId, claim: claimAll(7) }));
          if (r.claimed.length === 0) return;
          for (const c of r.claimed) {
            assert.ok(!claimedBy.has(c.taskId), `task ${c.taskId} claimed by ${claimedBy.get(c.taskId)} and ${nodeId}`);
            claimedBy.set(c.taskId, nodeId);
          }
        }
      };
      await Promise.all([worker(a, NODE), worker(b, OTHER), worker(a, NODE), worker(b, OTHER)]);
      assert.equal(claimedBy.size, tasks.length);
      const counts = await a.opsSnapshot(T0 + 2);
      assert.equal(counts.steps.RUNNING, tasks.length);
      assert.equal(counts.steps.READY, 0);
    });

    test("a stale-epoch write is refused on either store, and the winner's result stands", async (t) => {
      const [a, b] = await openTwo(t);
      const tk = newTask([{ id: "s" }]);
      await submit(a, tk);
      const zombie = await claimOne(a, T0);
      await b.commit(batch(T0 + LEASE_MS + 1, { nodeId: OTHER, reclaimExpiredLimit: 10 }));
      const winner = await claimOne(b, T0 + LEASE_MS + 2, OTHER);
      assert.ok(winner.leaseEpoch > zombie.leaseEpoch);
      const late = await a.commit(batch(T0 + LEASE_MS + 3, { completions: [{ ...ref(zombie), outputJson: "\"zombie\"" }], renewals: [ref(zombie)] }));
      assert.deepEqual(late.outcomes, []);
      assert.deepEqual(late.refused.map((c) => [c.operation, c.expectedLeaseEpoch, c.actualLeaseEpoch]).sort(),
        [["complete", zombie.leaseEpoch, winner.leaseEpoch], ["heartbeat", zombie.leaseEpoch, winner.leaseEpoch]]);
      // The same stale write through the other store is refused too.
      const viaB = await b.commit(batch(T0 + LEASE_MS + 4, { completions: [{ ...ref(zombie), outputJson: "1" }] }));
      assert.equal(viaB.refused.length, 1);
      const won = await b.commit(batch(T0 + LEASE_MS + 5, { nodeId: OTHER, completions: [{ ...ref(winner), outputJson: "\"winner\"" }] }));
      assert.equal(won.outcomes.length, 1);
      assert.equal((await step(a, tk.taskId, "s")).output, "winner");
      assert.equal((await a.listLeaseConflicts({ sinceMs: 0, limit: 10 })).length, 3);
    });

    test("idempotent submits from two stores at once create one task", async (t) => {
      const [a, b] = await openTwo(t);
      const submits = Array.from({ length: 8 }, (_, i) => (i % 2 === 0 ? a : b).commit(batch(T0, { submissions: [newTask([{ id: "s" }], { idempotencyKey: "same-key" })] })));
      const results = (await Promise.all(submits)).map((r) => r.submitted[0]!);
      assert.equal(results.filter((r) => r.created).length, 1);
      assert.equal(new Set(results.map((r) => r.taskId)).size, 1);
      assert.equal((await a.listTasks({ limit: 10, offset: 0 })).total, 1);
      assert.equal(await b.findTaskByIdempotencyKey("same-key"), results[0]!.taskId);
    });

    test("submissions committed together are stored as they would be one by one (rows, edges, inputs, claim order)", async (t) => {
      const store = await open(t);
      const shapes = () => [
        newTask([{ id: "one", input: { n: 1, s: "quote \" and \\ and é" } }], { name: "single", parentSpanId: "0123456789abcdef" }),
        newTask([{ id: "a" }, { id: "b", dependsOn: ["a"] }, { id: "c", dependsOn: ["a"] }, { id: "d", dependsOn: ["b", "c"] }], { priority: HIGH, failFast: true }),
        newTask([{ id: "x", input: [1, 2.5, null] }, { id: "y", dependsOn: ["x"] }], { priority: LOW }),
      ];
      const together = shapes();
      const alone = shapes();
      const r = await store.commit(batch(T0, { submissions: together }));
      assert.deepEqual(r.submitted, together.map((tk) => ({ taskId: tk.taskId, created: true, steps: tk.steps.length })));
      for (const tk of alone) await submit(store, tk);
      const view = async (taskId: string) => {
        const { steps, edges, ...row } = await task(store, taskId);
        return { row: { ...row, taskId: "", traceId: "" }, steps: steps.map((s) => ({ ...s, taskId: "", traceId: "" })), edges };
      };
      for (let i = 0; i < together.length; i++) assert.deepEqual(await view(together[i]!.taskId), await view(alone[i]!.taskId));
      const claimed = (await store.commit(batch(T0 + 1, { claim: claimAll(10) }))).claimed;
      assert.deepEqual(claimed.map((c) => [c.taskId, c.stepId, JSON.parse(c.payloadJson).input]), [
        [together[1]!.taskId, "a", null], [alone[1]!.taskId, "a", null],
        [together[0]!.taskId, "one", { n: 1, s: "quote \" and \\ and é" }], [alone[0]!.taskId, "one", { n: 1, s: "quote \" and \\ and é" }],
        [together[2]!.taskId, "x", [1, 2.5, null]], [alone[2]!.taskId, "x", [1, 2.5, null]],
      ]);
      // Their dependents unlock as they finish (what each step's row says it unlocks).
      const next = await store.commit(batch(T0 + 2, { completions: claimed.map((c) => ({ ...ref(c), outputJson: "1" })), claim: claimAll(10) }));
      assert.deepEqual(next.claimed.map((c) => [c.taskId, c.stepId, JSON.parse(c.payloadJson).deps]), [
        [together[1]!.taskId, "b", { a: 1 }], [together[1]!.taskId, "c", { a: 1 }], [alone[1]!.taskId, "b", { a: 1 }], [alone[1]!.taskId, "c", { a: 1 }],
        [together[2]!.taskId, "y", { x: 1 }], [alone[2]!.taskId, "y", { x: 1 }],
      ]);
      const byId = (a: { taskId: string }, b: { taskId: string }) => (a.taskId < b.taskId ? -1 : 1);
      assert.deepEqual([...next.finishedTasks].sort(byId), [{ taskId: together[0]!.taskId, status: "SUCCESS" }, { taskId: alone[0]!.taskId, status: "SUCCESS" }].sort(byId));
    });

    test("a batch never fails for one item: a bad submission gets its own error, the rest of the batch commits", async (t) => {
      const store = await open(t);
      const running = newTask([{ id: "s" }]);
      await submit(store, running);
      const c = await claimOne(store, T0);
      const good = newTask([{ id: "g" }]);
      const bad = newTask([{ id: "dup" }, { id: "dup" }]);
      const dupKey = newTask([{ id: "k" }], { idempotencyKey: "k1" });
      const dupKeyAgain = newTask([{ id: "k" }], { idempotencyKey: "k1" });
      const r = await store.commit(batch(T0 + 1, {
        submissions: [good, bad, dupKey, dupKeyAgain], completions: [{ ...ref(c), outputJson: "7" }], renewals: [],
      }));
      assert.deepEqual(r.submitted.map((x) => [x.taskId, x.created, x.error === undefined]), [
        [good.taskId, true, true], [bad.taskId, false, false], [dupKey.taskId, true, true], [dupKey.taskId, false, true],
      ]);
      assert.match(r.submitted[1]!.error!.message, new RegExp(bad.taskId));
      assert.equal(r.outcomes.length, 1, "the completion committed");
      assert.equal((await task(store, running.taskId)).status, "SUCCESS");
      assert.equal(await store.getTask(bad.taskId), null);
      assert.equal((await store.listTasks({ limit: 10, offset: 0 })).total, 3);
    });

    test("a batch of submissions only: a bad one gets its own error, the others commit", async (t) => {
      const store = await open(t);
      await submit(store, newTask([{ id: "warm" }]));
      const good = [newTask([{ id: "a" }]), newTask([{ id: "a" }, { id: "b", dependsOn: ["a"] }])];
      const bad = newTask([{ id: "dup" }, { id: "dup" }]);
      const r = await store.commit(batch(T0 + 1, { submissions: [good[0]!, bad, good[1]!] }));
      assert.deepEqual(r.submitted.map((x) => [x.taskId, x.created, x.error === undefined]), [
        [good[0]!.taskId, true, true], [bad.taskId, false, false], [good[1]!.taskId, true, true],
      ]);
      assert.equal(await store.getTask(bad.taskId), null);
      assert.deepEqual((await task(store, good[1]!.taskId)).steps.map((x) => [x.stepId, x.status]), [["a", "READY"], ["b", "WAITING"]]);
    });

    test("an idle claim writes nothing and reports the next retry time", async (t) => {
      const store = await open(t);
      const before = await store.exportRows(() => undefined);
      const r = await store.commit(batch(T0, { claim: claimAll(5), releaseRetriesLimit: 10, reclaimExpiredLimit: 10 }));
      assert.deepEqual([r.claimed, r.nextRetryAtMs, r.reclaimed], [[], null, 0]);
      assert.deepEqual(await store.exportRows(() => undefined), before);
    });

    test("membership: heartbeat, standings applied only from the standing read, reclaim of dead nodes' steps, prune, ownership events", async (t) => {
      const [a, b] = await openTwo(t);
      await a.heartbeatNode({ nodeId: NODE, hostname: "h1", pid: 11 }, T0);
      await b.heartbeatNode({ nodeId: OTHER, hostname: "h2", pid: 22 }, T0 + 5);
      let nodes = await a.listNodes();
      assert.deepEqual(nodes.map((n) => [n.nodeId, n.status, n.state, n.lastHeartbeatMs]), [[NODE, "ALIVE", "running", T0], [OTHER, "ALIVE", "running", T0 + 5]]);
      const from = { status: "ALIVE" as const, sinceMs: nodes[0]!.statusSinceMs };
      assert.equal(await a.setMemberships([{ nodeId: NODE, from, status: "SUSPECT", sinceMs: T0 + 100 }]), 1);
      // A second tick that read the old standing changes nothing.
      assert.equal(await b.setMemberships([{ nodeId: NODE, from, status: "DEAD", sinceMs: T0 + 200 }]), 0);
      nodes = await b.listNodes();
      assert.deepEqual([nodes[0]!.status, nodes[0]!.statusSinceMs], ["SUSPECT", T0 + 100]);

      const tk = newTask([{ id: "x" }, { id: "y" }]);
      await submit(a, tk);
      const r = await a.commit(batch(T0 + 10, { claim: claimAll(2) }));
      assert.equal(r.claimed.length, 2);
      assert.equal(await b.reclaimStepsOfNodes([NODE], 1, T0 + 300, OTHER), 1, "bounded by the limit");
      assert.equal(await b.reclaimStepsOfNodes([NODE], 10, T0 + 301, OTHER), 1);
      assert.equal(await b.reclaimStepsOfNodes([NODE], 10, T0 + 302, OTHER), 0);
      const steps = (await task(a, tk.taskId)).steps;
      assert.deepEqual(steps.map((s) => s.status), ["READY", "READY"]);
      for (const s of steps) assert.ok(s.leaseEpoch > r.claimed.find((c) => c.stepId === s.stepId)!.leaseEpoch, `${s.stepId}: epoch moved on`);
      const late = await a.commit(batch(T0 + 303, { completions: r.claimed.map((c) => ({ ...ref(c), outputJson: "1" })) }));
      assert.equal(late.refused.length, 2, "the dead node's late results are refused");
      const events = await a.ownershipEvents(0, 10);
      assert.equal(events.filter((e) => e.kind === "dead-owner-reclaim").length, 2);
      assert.ok(events.filter((e) => e.kind === "dead-owner-reclaim").every((e) => e.nodeId === OTHER && e.fromNode === NODE));
      assert.equal(events.filter((e) => e.kind === "lease-conflict").length, 2);
      assert.equal((await a.counters()).dead_owner_reclaimed_total, 2);

      await a.stopNode({ nodeId: NODE, pid: 11 }, T0 + 400);
      assert.equal((await a.listNodes())[0]!.state, "stopped");
      assert.equal(await a.setMemberships([{ nodeId: NODE, from: { status: "SUSPECT", sinceMs: T0 + 100 }, status: "DEAD", sinceMs: T0 + 500 }]), 1);
      assert.equal(await b.pruneNodes(T0 + 300, 10), 0, "its heartbeat is newer");
      assert.equal(await b.pruneNodes(T0 + 1_000, 10), 1);
      assert.deepEqual((await a.listNodes()).map((n) => n.nodeId), [OTHER]);
    });

    test("cluster epoch: 0 until bumped; a bump fences every RUNNING step on every store", async (t) => {
      const [a, b] = await openTwo(t);
      assert.equal(await a.clusterEpoch(), 0);
      const tk = newTask([{ id: "s" }]);
      await submit(a, tk);
      const c = await claimOne(a, T0);
      const bumped = await b.bumpClusterEpoch(T0 + 1);
      assert.deepEqual(bumped, { clusterEpoch: 1, fencedSteps: [{ taskId: tk.taskId, stepId: "s" }] });
      assert.equal(await a.clusterEpoch(), 1);
      const s = await step(a, tk.taskId, "s");
      assert.deepEqual([s.status, s.attempt], ["READY", 0]);
      const late = await a.commit(batch(T0 + 2, { completions: [{ ...ref(c), outputJson: "1" }] }));
      assert.equal(late.refused.length, 1);
      assert.equal((await b.bumpClusterEpoch(T0 + 3)).clusterEpoch, 2);
    });

    test("opsSnapshot: counts per status, queue lag, durations and counters in one read", async (t) => {
      const store = await open(t);
      const tk = newTask([{ id: "a" }, { id: "b" }]);
      await submit(store, tk, T0);
      const r = await store.commit(batch(T0 + 5, { claim: claimAll(1) }));
      await store.commit(batch(T0 + 25, { completions: [{ ...ref(r.claimed[0]!), outputJson: "1" }] }));
      const snap = await store.opsSnapshot(T0 + 30);
      assert.equal(snap.atMs, T0 + 30);
      assert.equal(snap.tasks.RUNNING, 1);
      assert.deepEqual([snap.steps.SUCCESS, snap.steps.READY, snap.steps.RUNNING], [1, 1, 0]);
      assert.equal(snap.oldestReadyAtMs, T0);
      assert.deepEqual(snap.recentStepDurationsMs, [20]);
      assert.equal(snap.stepDurationSumMs, 20);
      assert.equal(snap.stepDurationBuckets.find((b) => b.leMs === 25)!.count, 1);
      assert.equal(snap.stepDurationBuckets.reduce((n, b) => n + b.count, 0), 1);
      assert.equal(snap.deadLetteredLastHour, 0);
      assert.equal(typeof snap.counters, "object");
    });

    test("exportRows / importRows: a logical copy into an empty store holds the same tasks, steps, outputs and kv", async (t) => {
      const [a] = await openTwo(t);
      const tk = newTask([{ id: "a", input: { n: 1 } }, { id: "b", dependsOn: ["a"] }]);
      await submit(a, tk);
      const c = await claimOne(a, T0 + 1);
      await a.commit(batch(T0 + 2, {
        completions: [{ ...ref(c), outputJson: "{\"out\":1}" }],
        kvWrites: [{ ref: null, namespace: tk.taskId, entries: [{ key: "k", valueJson: "[1,2]" }], writer: "op" }],
      }));
      const pages: { table: string; rows: Record<string, unknown>[] }[] = [];
      const counts = await a.exportRows((p) => { pages.push(p); });
      assert.equal(counts.tasks, 1);
      assert.equal(counts.steps, 2);
      assert.equal(counts.edges, 1);
      assert.equal(counts.kv, 1);
      const { store: target, cleanup } = await factory();
      t.after(cleanup);
      for (const p of pages) await target.importRows(p);
      const copied = await task(target, tk.taskId);
      const original = await task(a, tk.taskId);
      assert.deepEqual(copied, original);
      assert.deepEqual((await target.kvGet(tk.taskId, "k"))!.value, [1, 2]);
      // The copy goes on working: the next step claims with its dependency's output, new rows get new ids.
      const next = await claimOne(target, T0 + 3);
      assert.deepEqual(payload(next).deps, { a: { out: 1 } });
      await submit(target, newTask([{ id: "z" }]), T0 + 4);
      assert.equal((await target.listTasks({ limit: 10, offset: 0 })).total, 2);
      const w = await target.commit(batch(T0 + 5, { kvWrites: [{ ref: null, namespace: tk.taskId, entries: [{ key: "k2", valueJson: "1" }], writer: "op" }] }));
      assert.deepEqual(w.kvResults, ["ok"]);
      const changes = await target.kvChanges(tk.taskId, 0, 10);
      assert.ok(changes[1]!.version > changes[0]!.version, "kv versions go on past the imported ones");
    });

    test("health: open and writable; migrate is idempotent; close is idempotent and later calls fail with a store error", async (t) => {
      const { store, another, cleanup } = await factory();
      t.after(cleanup);
      const checks = await store.health();
      for (const name of ["store-open", "store-writable"]) assert.ok(checks.find((c) => c.name === name)?.ok, `${name}: ${JSON.stringify(checks)}`);
      await store.migrate();
      const second = await another();
      await second.migrate();
      assert.equal(typeof store.now(), "number");
      assert.ok(Math.abs(store.now() - Date.now()) < 60_000);
      await second.close();
      await second.close();
      await assert.rejects(() => second.listTasks({ limit: 1, offset: 0 }), (e: Error & { code?: string }) => e.code === "RELAYMESH_ERR_STORE");
      assert.equal((await store.listTasks({ limit: 1, offset: 0 })).total, 0, "the other store is unaffected");
    });
  });
}
