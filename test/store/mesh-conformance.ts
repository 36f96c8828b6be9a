// Store-level behaviour of many nodes on one store (agents advertised and claimed, load reports)
// and of moving a store's contents into another (migrate), run against every store like the
// conformance suite.
import { describe, test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { migrateStore } from "../../src/ops/migrate.js";
import type { Store } from "../../src/store/store.js";
import { ERROR, NODE, T0, batch, claimOne, newTask, payload, ref, step, submit, task, type StoreFactory } from "./conformance.js";

/** A source store with a task in every status, a lease conflict, checkpoints, a settings change and audit records. */
async function populate(store: Store) {
  const running = await submit(store, newTask([{ id: "r", input: { n: 2 } }]));
  const live = await claimOne(store, T0 + 1);
  const retrying = await submit(store, newTask([{ id: "t" }]), T0 + 2);
  const t = await claimOne(store, T0 + 3);
  await store.commit(batch(T0 + 4, { failures: [{ ...ref(t), attempt: 1, error: ERROR, next: { kind: "retry", atMs: T0 + 60_000 } }] }));
  const dead = await submit(store, newTask([{ id: "d", maxAttempts: 1 }, { id: "after", dependsOn: ["d"] }]), T0 + 5);
  const d = await claimOne(store, T0 + 6);
  await store.commit(batch(T0 + 7, { failures: [{ ...ref(d), attempt: 1, error: ERROR, next: { kind: "dead" } }] }));
  const cancelled = await submit(store, newTask([{ id: "c" }]), T0 + 8);
  await store.cancelTask(cancelled, "hard", T0 + 9);
  const done = await submit(store, newTask([{ id: "s1" }, { id: "s2", dependsOn: ["s1"] }]), T0 + 10);
  for (const [i, id] of ["s1", "s2"].entries()) {
    const c = await claimOne(store, T0 + 11 + i * 2);
    assert.equal(c.stepId, id);
    await store.commit(batch(T0 + 12 + i * 2, {
      kvWrites: [{ ref: ref(c), namespace: done, entries: [{ key: `k-${id}`, valueJson: JSON.stringify({ at: id }) }], writer: "w" }],
      completions: [{ ...ref(c), outputJson: JSON.stringify({ out: id }) }],
    }));
  }
  const pending = await submit(store, newTask([{ id: "p", input: { n: 1 } }], { idempotencyKey: "key-1" }), T0 + 19);
  // A zombie's late write on the running step: a lease conflict.
  await store.commit(batch(T0 + 20, { completions: [{ ...ref(live), leaseEpoch: live.leaseEpoch - 1, outputJson: "0" }] }));
  await store.commit(batch(T0 + 21, { kvWrites: [{ ref: null, namespace: "shared", entries: [{ key: "x", valueJson: "1" }], writer: "op" }] }));
  await store.addSettingsChange({ entryId: randomUUID(), atMs: T0, nodeId: "n1", actor: "cli:me", result: "ok", changedFields: ["maxAttempts"], error: null });
  const audit = { nodeId: "n1", actor: "cli:me", result: "ok" as const, traceId: null, spanId: null, stepId: null, detailsJson: "{}" };
  await store.appendAudit([
    { ...audit, atMs: T0 + 10, action: "task.submit", resource: `task/${done}`, taskId: done },
    { ...audit, atMs: T0 + 22, action: "settings.reload", resource: "settings", taskId: null },
  ]);
  return { pending, running, live, retrying, dead, cancelled, done };
}

export function meshConformance(name: string, factory: StoreFactory): void {
  async function open(t: TestContext): Promise<Store> {
    const { store, cleanup } = await factory();
    t.after(cleanup);
    return store;
  }

  describe(`Store mesh: ${name}`, () => {
    test("heartbeatNode: agents and load land on the node row; a heartbeat without them keeps the last ones", async (t) => {
      const store = await open(t);
      await store.heartbeatNode({ nodeId: NODE, hostname: "h", pid: 1 }, T0);
      assert.deepEqual((await store.listNodes()).map((n) => [n.agents, n.load]), [[null, null]]);
      const load = { cpu: 0.5, memory: 0.25, running: 3, capacity: 32 };
      await store.heartbeatNode({ nodeId: NODE, hostname: "h", pid: 1, agents: ["a", "echo"], load }, T0 + 1);
      await store.heartbeatNode({ nodeId: NODE, hostname: "h", pid: 1 }, T0 + 2);
      const [n] = await store.listNodes();
      assert.deepEqual([n!.agents, n!.load, n!.lastHeartbeatMs], [["a", "echo"], load, T0 + 2]);
    });

    test("audit: entries of every node in one statement, read back newest first (ties: later written first) with filters", async (t) => {
      const store = await open(t);
      const entry = (atMs: number, nodeId: string, action: string, taskId: string | null) => ({
        atMs, nodeId, action, actor: `node:${nodeId}`, resource: taskId ? `task/${taskId}` : "nodes", result: "ok" as const,
        traceId: taskId ? "t".repeat(32) : null, spanId: null, taskId, stepId: null, detailsJson: JSON.stringify({ n: atMs - T0, who: nodeId }),
      });
      await store.appendAudit([]);
      await store.appendAudit([entry(T0 + 2, "b", "task.submit", "x"), entry(T0, "a", "task.submit", "y")]);
      await store.appendAudit([entry(T0 + 1, "a", "node.membership", null), entry(T0 + 2, "a", "task.cancel", "x")]);
      const all = await store.auditEntries({ limit: 10 });
      assert.deepEqual(all.map((e) => [e.atMs - T0, e.nodeId, e.action]),
        [[2, "a", "task.cancel"], [2, "b", "task.submit"], [1, "a", "node.membership"], [0, "a", "task.submit"]]);
      assert.deepEqual(all[1], entry(T0 + 2, "b", "task.submit", "x"), "every field comes back as written");
      assert.deepEqual((await store.auditEntries({ taskId: "x", limit: 10 })).map((e) => e.action), ["task.cancel", "task.submit"]);
      assert.deepEqual((await store.auditEntries({ action: "task.submit", limit: 10 })).map((e) => e.nodeId), ["b", "a"]);
      assert.deepEqual((await store.auditEntries({ fromMs: T0 + 1, toMs: T0 + 1, limit: 10 })).map((e) => e.action), ["node.membership"]);
      assert.deepEqual((await store.auditEntries({ limit: 1 })).map((e) => e.action), ["task.cancel"]);
    });

    test("commit: a claim limited to some agents takes only their steps; an idle probe for them writes nothing", async (t) => {
      const a = await open(t);
      const tk = newTask([{ id: "x", agent: "resize" }, { id: "y", agent: "echo" }, { id: "z", agent: "resize", priority: 2 }]);
      await submit(a, tk);
      const echoOnly = await a.commit(batch(T0 + 1, { claim: { limit: 10, agents: ["echo", "fail"] } }));
      assert.deepEqual(echoOnly.claimed.map((c) => c.stepId), ["y"]);
      const before = await a.exportRows(() => undefined);
      const none = await a.commit(batch(T0 + 2, { claim: { limit: 10, agents: ["echo"] } }));
      assert.deepEqual(none.claimed, []);
      assert.deepEqual(await a.exportRows(() => undefined), before, "nothing it may claim: nothing written");
      const snap = await a.opsSnapshot(T0 + 10);
      assert.deepEqual(snap.readyByAgent, [{ agent: "resize", count: 2, oldestReadyAtMs: T0 }]);
      const quota = await a.commit(batch(T0 + 3, { claim: { limit: 1, quotas: [0, 1, 0], agents: ["resize"] } }));
      assert.deepEqual(quota.claimed.map((c) => c.stepId), ["x"], "a quota pick honours the agents too");
      const rest = await a.commit(batch(T0 + 4, { claim: { limit: 10 } }));
      assert.deepEqual(rest.claimed.map((c) => c.stepId), ["z"]);
    });
  });

  describe(`Store ownership timeline: ${name}`, () => {
    test("ownershipEvents: an expired-lease reclaim and a dead owner's reclaim are recorded with the old owner and both epochs; refused writes too", async (t) => {
      const store = await open(t);
      const tk = newTask([{ id: "x" }, { id: "y" }]);
      await submit(store, tk);
      const [x, y] = (await store.commit(batch(T0 + 1, { nodeId: "zombie", claim: { limit: 2 } }))).claimed;
      await store.heartbeatNode({ nodeId: "zombie", hostname: "h", pid: 1 }, T0);
      await store.heartbeatNode({ nodeId: "other", hostname: "h", pid: 2 }, T0);
      let snap = await store.opsSnapshot(T0 + 2);
      assert.deepEqual([snap.nodesByStatus.ALIVE, snap.runningByOwnerStatus.ALIVE], [2, 2]);
      // x's lease expires (lease 1000 ms); y is taken from its owner when it is declared DEAD.
      await store.commit(batch(T0 + 900, { nodeId: "zombie", renewals: [ref(y!)] }));
      const r = await store.commit(batch(T0 + 1_500, { nodeId: "other", reclaimExpiredLimit: 10 }));
      assert.equal(r.reclaimed, 1);
      const [zombie] = (await store.listNodes()).filter((n) => n.nodeId === "zombie");
      await store.setMemberships([{ nodeId: "zombie", from: { status: "ALIVE", sinceMs: zombie!.statusSinceMs }, status: "DEAD", sinceMs: T0 + 1_600 }]);
      snap = await store.opsSnapshot(T0 + 1_600);
      assert.deepEqual([snap.nodesByStatus.DEAD, snap.runningByOwnerStatus.DEAD], [1, 1]);
      assert.equal(await store.reclaimStepsOfNodes(["zombie"], 10, T0 + 1_700, "other"), 1);
      await store.commit(batch(T0 + 1_800, { nodeId: "zombie", completions: [{ ...ref(x!), outputJson: "1" }] }));
      const events = await store.ownershipEvents(0, 10);
      assert.deepEqual(events.map((e) => [e.kind, e.stepId, e.nodeId, e.fromNode]), [
        ["lease-conflict", "x", "zombie", null],
        ["dead-owner-reclaim", "y", "other", "zombie"],
        ["expired-lease-reclaim", "x", "other", "zombie"],
      ]);
      assert.deepEqual(events[2]!.details, { fromLeaseEpoch: x!.leaseEpoch, toLeaseEpoch: x!.leaseEpoch + 1, toStatus: "READY", leaseExpiredAtMs: T0 + 1_001 });
      assert.deepEqual(events[1]!.details, { fromLeaseEpoch: y!.leaseEpoch, toLeaseEpoch: y!.leaseEpoch + 1, toStatus: "READY" });
      assert.deepEqual(events[0]!.details, { operation: "complete", expectedLeaseEpoch: x!.leaseEpoch, actualLeaseEpoch: x!.leaseEpoch + 1 });
      const counters = await store.counters();
      assert.deepEqual([counters.lease_expired_reclaimed_total, counters.dead_owner_reclaimed_total], [1, 1]);
    });
  });

  describe(`Store migration: ${name}`, () => {
    test("meta: every store has an origin of its own; setMeta stores and replaces values", async (t) => {
      const [a, b] = [await open(t), await open(t)];
      const origin = await a.meta("origin");
      assert.match(origin ?? "", /^[0-9a-f]{32}$/);
      assert.notEqual(await b.meta("origin"), origin);
      assert.equal(await a.meta("nothing"), null);
      await a.setMeta("k", "1");
      await a.setMeta("k", "2");
      assert.equal(await a.meta("k"), "2");
    });

    test("settings history: newest first, an entry id recorded twice is kept once", async (t) => {
      const store = await open(t);
      const entry = { entryId: "e1", atMs: T0, nodeId: "n1", actor: "cli:me", result: "ok" as const, changedFields: ["leaseTimeoutMs"], error: null };
      await store.addSettingsChange(entry);
      await store.addSettingsChange(entry);
      await store.addSettingsChange({ ...entry, entryId: "e2", atMs: T0 + 1, result: "error", changedFields: [], error: "bad file" });
      assert.deepEqual((await store.settingsHistory(10)).map((h) => [h.entryId, h.result, h.changedFields, h.error]),
        [["e2", "error", [], "bad file"], ["e1", "ok", ["leaseTimeoutMs"], null]]);
    });

    test("migrateStore: every status, outputs, checkpoints, keys, conflicts and settings; RUNNING arrives READY with a bumped epoch; a rerun copies nothing", async (t) => {
      const source = await open(t);
      const target = await open(t);
      const ids = await populate(source);
      const r = await migrateStore(source, target, { merge: false, nowMs: T0 + 100 });
      assert.deepEqual(r.copied, {
        tasks: 6, steps: 8, outputs: 2, edges: 2, kv: 3, idempotencyKeys: 1, leaseConflicts: 1, ownershipEvents: 0, auditRecords: 2, settingsHistory: 1,
        counters: r.copied.counters,
      });
      assert.deepEqual([r.requeued, r.rerun, r.alreadyPresent.tasks], [1, false, 0]);
      for (const id of [ids.pending, ids.retrying, ids.dead, ids.cancelled, ids.done]) {
        const [a, b] = [await task(source, id), await task(target, id)];
        assert.deepEqual(b, a, `task ${id} copied as it is`);
      }
      const was = await step(source, ids.running, "r");
      const now = await step(target, ids.running, "r");
      assert.deepEqual([was.status, now.status, now.leaseOwner, now.leaseEpoch, now.attempt], ["RUNNING", "READY", null, was.leaseEpoch + 1, 0]);
      assert.equal(await target.findTaskByIdempotencyKey("key-1"), ids.pending);
      assert.deepEqual((await target.kvGet(ids.done, "k-s2"))!.value, { at: "s2" });
      assert.deepEqual((await target.kvGet("shared", "x"))!.value, 1);
      assert.equal((await target.listLeaseConflicts({ sinceMs: 0, limit: 10 }))[0]!.taskId, ids.running);
      assert.deepEqual((await target.settingsHistory(10)).map((h) => h.changedFields), [["maxAttempts"]]);

      const again = await migrateStore(source, target, { merge: false, nowMs: T0 + 200 });
      assert.ok(Object.values(again.copied).every((n) => n === 0), JSON.stringify(again.copied));
      assert.deepEqual([again.rerun, again.alreadyPresent.tasks, again.requeued], [true, 6, 0]);
      assert.equal((await target.listTasks({ limit: 1, offset: 0 })).total, 6);

      // The target runs what was left: the pending step and the requeued one, with their inputs.
      const claimed = (await target.commit(batch(T0 + 300, { claim: { limit: 10 } }))).claimed;
      assert.deepEqual(claimed.map((c) => [c.taskId, payload(c).input]).sort(), [[ids.pending, { n: 1 }], [ids.running, { n: 2 }]].sort());
      const late = await target.commit(batch(T0 + 301, { completions: [{ ...ref(ids.live), outputJson: "1" }] }));
      assert.equal(late.refused.length, 1, "the old lease is fenced in the target too");
      await target.commit(batch(T0 + 302, { completions: claimed.map((c) => ({ ...ref(c), outputJson: "2" })) }));
      assert.equal((await task(target, ids.running)).status, "SUCCESS");
      assert.equal((await task(target, ids.pending)).status, "SUCCESS");
    });

    test("migrateStore: a run cut short leaves no half-copied task; the rerun completes every task and copies nothing twice", async (t) => {
      const source = await open(t);
      const target = await open(t);
      const ids = await populate(source);
      const full = await migrateStore(source, await open(t), { merge: false, nowMs: T0 + 100 });
      // The target's connection goes away while step outputs are written: steps and inputs are in.
      const cut = new Proxy(target, {
        get(store, name) {
          if (name === "importRows") {
            return (page: { table: string }, ...rest: unknown[]) =>
              page.table === "step_outputs" ? Promise.reject(new Error("connection lost")) : (store.importRows as (...a: unknown[]) => unknown).call(store, page, ...rest);
          }
          const value = Reflect.get(store, name) as unknown;
          return typeof value === "function" ? value.bind(store) : value;
        },
      });
      await assert.rejects(migrateStore(source, cut, { merge: false, nowMs: T0 + 100 }), /connection lost/);
      assert.equal((await target.listTasks({ limit: 1, offset: 0 })).total, 0, "no task row without all of its rows");
      const rerun = await migrateStore(source, target, { merge: false, nowMs: T0 + 200 });
      assert.equal(rerun.rerun, true);
      // Checkpoints, counters and settings are keyed: the cut run's copies stay and are not made again.
      const uncut = (c: typeof full.copied) => ({ ...c, kv: 0, counters: 0, settingsHistory: 0 });
      assert.deepEqual(uncut(rerun.copied), uncut(full.copied));
      for (const id of [ids.pending, ids.retrying, ids.dead, ids.cancelled, ids.done]) assert.deepEqual(await task(target, id), await task(source, id));
      const rows = async (store: Store) => {
        const n: Record<string, number> = Object.create(null) as Record<string, number>;
        await store.exportRows((p) => { n[p.table] = (n[p.table] ?? 0) + p.rows.length; }, { tables: ["steps", "step_inputs", "step_outputs", "edges", "lease_conflicts", "kv", "audit_records"] });
        return n;
      };
      assert.deepEqual(await rows(target), await rows(source), "every row once");
      assert.equal(await target.removeOrphanRows(), 0);
    });

    test("removeOrphanRows: deletes steps, inputs, outputs and edges of tasks the store does not hold; keeps history", async (t) => {
      const store = await open(t);
      const kept = await submit(store, newTask([{ id: "a" }, { id: "b", dependsOn: ["a"] }]));
      const c = await claimOne(store, T0 + 1);
      await store.commit(batch(T0 + 2, { renewals: [{ ...ref(c), leaseEpoch: c.leaseEpoch + 1 }] }));
      const pages: { table: string; rows: Record<string, unknown>[] }[] = [];
      await store.exportRows((p) => { pages.push(p); }, { tables: ["steps", "step_inputs", "edges"] });
      const other = await open(t);
      for (const p of pages) await other.importRows(p);
      assert.equal(await other.removeOrphanRows(), 2 + 2 + 1 + 0, "two steps, their inputs and the edge of a task it never held");
      assert.equal(await store.removeOrphanRows(), 0, "a complete task is left alone");
      assert.equal((await store.listLeaseConflicts({ sinceMs: 0, limit: 10 })).length, 1);
      assert.equal((await task(store, kept)).steps.length, 2);
    });

    test("migrateStore: a target holding another store's tasks is refused unless merge; merged steps get ids of their own", async (t) => {
      const source = await open(t);
      const target = await open(t);
      const ids = await populate(source);
      const own = await submit(target, newTask([{ id: "mine", input: "target's" }]));
      await assert.rejects(migrateStore(source, target, { merge: false, nowMs: T0 + 100 }), (e: Error & { code?: string }) => {
        assert.equal(e.code, "RELAYMESH_ERR_INVALID_INPUT");
        assert.match(e.message, /holds 1 task\(s\) of another store; pass --merge/);
        return true;
      });
      assert.equal((await target.listTasks({ limit: 1, offset: 0 })).total, 1, "nothing was written");
      const r = await migrateStore(source, target, { merge: true, nowMs: T0 + 100 });
      assert.equal(r.copied.tasks, 6);
      assert.equal((await target.listTasks({ limit: 1, offset: 0 })).total, 7);
      assert.deepEqual((await step(target, own, "mine")).input, "target's");
      assert.deepEqual((await step(target, ids.done, "s2")).output, { out: "s2" });
      const claimed = (await target.commit(batch(T0 + 300, { nodeId: NODE, claim: { limit: 10 } }))).claimed;
      assert.equal(new Set(claimed.map((c) => c.stepKey)).size, 3, "three distinct runnable steps");
      await assert.rejects(migrateStore(source, source, { merge: true, nowMs: T0 }), /is the store being migrated/);
    });
  });
}
