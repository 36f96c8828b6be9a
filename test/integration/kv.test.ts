import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { RelayMesh, KvNamespace, ErrorCode, isRelayMeshError } from "../../src/index.js";
import type { KvChange } from "../../src/index.js";
import { cli, storeFor, tempRoot, waitUntil, REPO } from "../helpers.js";

const agents = [{ id: "checkpointer", module: join(REPO, "test/fixtures/agents/checkpointer.mjs"), export: "checkpointer" }];

test("ctx.kv: a retried step resumes from its last checkpoint; shared namespaces; mesh.kv and watchKv see the changes", async (t) => {
  const { root, cleanup } = tempRoot();
  t.after(cleanup);
  const store = storeFor(root);
  const mesh = await RelayMesh.open({ root, ...(store ? { store } : {}), agents, threads: 1, settings: { baseBackoffMs: 10, maxBackoffMs: 20 } });
  t.after(() => mesh.close());
  const progress: number[] = [];
  mesh.on("step:progress", (e) => progress.push(e.pct));
  const { taskId } = await mesh.submit({ agent: "checkpointer", input: { n: 6, failAfter: 4 } });
  const changes: KvChange[] = [];
  const stop = mesh.watchKv(taskId, (c) => changes.push(c), { intervalMs: 20 });
  t.after(stop);
  const done = await mesh.waitFor(taskId, { timeoutMs: 20_000 });
  assert.equal(done.status, "SUCCESS");
  assert.equal(done.steps[0]!.attempt, 2);
  const output = done.steps[0]!.output as { resumedFrom: number; all: Record<string, unknown>; sharedHasLast: boolean };
  assert.equal(output.resumedFrom, 4, "the second attempt resumed from the checkpoint, not from zero");
  assert.deepEqual(output.all, { done: 6 });
  assert.equal(output.sharedHasLast, true);
  assert.equal(done.steps[0]!.progressPct, 100);
  assert.ok(progress.includes(100));

  const kv = mesh.kv(taskId);
  assert.equal(await kv.getInt("done"), 6);
  assert.deepEqual(await mesh.kv("shared-stats").getAll(), { runs: 1, last: taskId });
  await waitUntil(() => changes.some((c) => c.key === "done" && c.value === 6), "the watcher to see the last checkpoint");
  assert.ok(changes.every((c, i) => i === 0 || c.version >= changes[i - 1]!.version), "changes arrive in version order");

  await kv.put("note", { by: "operator" });
  await kv.delete("done");
  await waitUntil(() => changes.some((c) => c.key === "done" && c.deleted), "the watcher to see the deletion");
  assert.deepEqual(await kv.getAll(), { note: { by: "operator" } });
  await assert.rejects(kv.getBool("note"), (e: unknown) => isRelayMeshError(e) && e.code === ErrorCode.INVALID_INPUT);
  await assert.rejects(kv.put("big", "x".repeat(11 * 1024 * 1024)), (e: unknown) => isRelayMeshError(e) && e.code === ErrorCode.INVALID_INPUT);
  const audit = await mesh.audit.query({ action: "kv.put" });
  assert.ok(audit.some((r) => (r.details.keys as string[]).includes("note")));
});

test("KvNamespace: typed helpers return the fallback when absent and refuse other types", async () => {
  const data = new Map<string, unknown>([["n", 3], ["f", 1.5], ["b", true], ["s", "x"]]);
  const kv = new KvNamespace("ns", {
    get: async (_ns, key) => (data.has(key) ? { found: true, value: data.get(key) } : { found: false }),
    getAll: async () => Object.fromEntries(data),
    write: async (_ns, entries) => { for (const e of entries) (e.valueJson === null ? data.delete(e.key) : data.set(e.key, JSON.parse(e.valueJson))); },
  }, { maxValueBytes: 100 });
  assert.equal(await kv.getInt("n"), 3);
  assert.equal(await kv.getInt("missing", 7), 7);
  assert.equal(await kv.getNumber("f"), 1.5);
  assert.equal(await kv.getBool("b"), true);
  await assert.rejects(kv.getInt("f"), /not an integer/);
  await assert.rejects(kv.getNumber("s"), /not a number/);
  await assert.rejects(kv.put("u", undefined), /undefined is not a JSON value/);
  await assert.rejects(kv.put("", 1), /non-empty/);
  await kv.putBatch([["a", 1], ["c", 2]]);
  assert.equal(await kv.exists("c"), true);
});

test("kv CLI: put, get, list and delete in a namespace; a missing key exits 3", async (t) => {
  const { root, cleanup } = tempRoot();
  t.after(cleanup);
  const put = await cli(["kv", "put", "--namespace", "ops", "limit", "{\"max\":5}", "--root", root, "--json"]);
  assert.equal(put.code, 0, put.stderr);
  assert.deepEqual(put.json(), { namespace: "ops", key: "limit", value: { max: 5 } });
  assert.deepEqual((await cli(["kv", "get", "limit", "--namespace", "ops", "--root", root, "--json"])).json(), { namespace: "ops", key: "limit", value: { max: 5 } });
  await cli(["kv", "put", "label", "plain text", "--namespace", "ops", "--root", root]);
  const list = (await cli(["kv", "list", "--namespace", "ops", "--root", root, "--json"])).json<{ namespace: string; entries: { key: string; value: unknown }[] }>();
  assert.deepEqual(list.entries.map((e) => [e.key, e.value]), [["label", "plain text"], ["limit", { max: 5 }]]);
  assert.equal((await cli(["kv", "delete", "limit", "--namespace", "ops", "--root", root])).code, 0);
  const missing = await cli(["kv", "get", "limit", "--namespace", "ops", "--root", root]);
  assert.equal(missing.code, 3);
  assert.equal((await cli(["kv", "frobnicate", "x", "--root", root])).code, 2);
});
