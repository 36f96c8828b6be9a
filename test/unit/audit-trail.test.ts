import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { AuditTrail } from "../../src/observe/audit-trail.js";
import { StoreAuditLog } from "../../src/observe/store-audit.js";
import { SqliteStore } from "../../src/store/sqlite/store.js";
import { tempRoot, waitUntil } from "../helpers.js";

async function storeTrail(t: import("node:test").TestContext, batching: { delayMs: number; maxRecords: number }) {
  const { root, cleanup } = tempRoot();
  const store = SqliteStore.open({ path: join(root, "relaymesh.db"), durability: "normal" });
  await store.migrate();
  t.after(async () => { await store.close(); cleanup(); });
  const errors: Error[] = [];
  const trail = new AuditTrail(new StoreAuditLog(store, "node-1"), (e) => errors.push(e), { ...batching, now: () => store.now() });
  return { store, trail, errors };
}

test("AuditTrail on a store: records wait for the batch delay, then go in one write; reads write what is buffered first", async (t) => {
  const { store, trail, errors } = await storeTrail(t, { delayMs: 200, maxRecords: 1_000 });
  const started = Date.now();
  for (let i = 0; i < 5; i++) trail.record({ action: "task.submit", actor: "api", resource: `task/t${i}`, task_id: `t${i}`, details: { i } });
  assert.equal((await store.auditEntries({ limit: 10 })).length, 0, "nothing written while the batch waits");
  await waitUntil(async () => (await store.auditEntries({ limit: 10 })).length === 5, "the batch to be written", 5_000, 10);
  assert.ok(Date.now() - started >= 150, "written after the batch delay, not per record");
  trail.record({ action: "task.cancel", actor: "api", resource: "task/t0", task_id: "t0" });
  const [last] = await trail.query({ limit: 1 });
  assert.deepEqual([last!.action, last!.node_id, last!.task_id, last!.result], ["task.cancel", "node-1", "t0", "ok"], "a read writes the buffer first");
  assert.deepEqual((await trail.tail(6)).map((r) => r.resource), ["task/t0", "task/t1", "task/t2", "task/t3", "task/t4", "task/t0"]);
  assert.deepEqual(errors, []);
});

test("AuditTrail on a store: a burst of maxRecords is written at once; close writes the rest", async (t) => {
  const { store, trail } = await storeTrail(t, { delayMs: 60_000, maxRecords: 3 });
  for (let i = 0; i < 4; i++) trail.record({ action: "kv.put", actor: "api", resource: `kv/${i}` });
  await waitUntil(async () => (await store.auditEntries({ limit: 10 })).length === 3, "the full batch to be written without waiting for the delay", 5_000, 10);
  await trail.close();
  assert.equal((await store.auditEntries({ limit: 10 })).length, 4, "close wrote the last one");
});

test("AuditTrail: a failed write is reported and its records wait for the next flush", async (t) => {
  const { store, trail, errors } = await storeTrail(t, { delayMs: 0, maxRecords: 1_000 });
  await store.close();
  trail.record({ action: "task.submit", actor: "api", resource: "task/x" });
  await trail.flush();
  assert.equal(errors.length, 1);
  assert.match(errors[0]!.message, /audit log the audit records of sqlite:.*: .*; 1 record\(s\) wait for the next write/);
});
