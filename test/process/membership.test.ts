import { test } from "node:test";
import assert from "node:assert/strict";
import { cli, spawnCli, tempRoot, waitUntil, TEST_STORE } from "../helpers.js";
import { prepareRoot, reader } from "./setup.js";

test("membership: a stopped node goes SUSPECT then DEAD, its step is reclaimed by a live node, and it recovers only after its dwell", async (t) => {
  const { root, cleanup } = tempRoot();
  t.after(cleanup);
  // Leases far longer than the membership windows: only the DEAD-owner reclaim can rescue the step.
  prepareRoot(root, { leaseTimeoutMs: 120_000, suspectAfterMs: 400, deadAfterMs: 900, suspectRecoverMinMs: 200, deadRecoverMinMs: 1_500 });
  const mesh = await reader(root);
  t.after(() => mesh.close());
  const { taskId } = await mesh.submit({ agent: "record", input: { ms: 1_000 } });
  const a = spawnCli(["worker", "--root", root, "--node-id", "a"]);
  t.after(() => { a.child.kill("SIGCONT"); a.child.kill("SIGKILL"); });
  await waitUntil(async () => (await mesh.getTask(taskId)).steps[0]!.leaseOwner === "a", "node a to claim the step");
  a.child.kill("SIGSTOP");

  const b = spawnCli(["worker", "--root", root, "--node-id", "b"]);
  t.after(() => { b.child.kill("SIGKILL"); });
  const done = await mesh.waitFor(taskId, { timeoutMs: 30_000 });
  assert.equal(done.status, "SUCCESS");
  assert.equal(done.steps[0]!.leaseOwner, "b");
  const members = (await cli(["members", "--root", root, "--json"])).json<{ members: { nodeId: string; status: string; lastHeartbeatMs: number }[] }>().members;
  assert.equal(members.find((m) => m.nodeId === "a")!.status, "DEAD");
  assert.equal(members.find((m) => m.nodeId === "b")!.status, "ALIVE");
  const events = (await cli(["ownership-events", "--root", root, "--json"])).json<{ events: { kind: string; fromNode: string; nodeId: string; taskId: string }[] }>().events;
  assert.ok(events.some((e) => e.kind === "dead-owner-reclaim" && e.fromNode === "a" && e.nodeId === "b" && e.taskId === taskId));
  assert.match((await cli(["metrics", "--root", root])).stdout, /^relaymesh_dead_owner_reclaimed_total 1$/m);

  // Node a comes back: its late write is refused, and it stays DEAD (not claiming) for its dwell before ALIVE.
  a.child.kill("SIGCONT");
  await waitUntil(async () => (await mesh.leaseConflicts()).some((c) => c.nodeId === "a"), "node a's late write to be refused");
  const back = await waitUntil(async () => {
    const recs = (await cli(["audit-query", "--action", "node.membership", "--root", root, "--json"])).json<{ records: any[] }>().records;
    const dead = recs.find((r) => r.resource === "node/a" && r.details.to === "DEAD");
    const alive = recs.find((r) => r.resource === "node/a" && r.details.from === "DEAD" && r.details.to === "ALIVE");
    return dead && alive ? { dead, alive } : null;
  }, "node a to be ALIVE again", 20_000);
  assert.ok(Date.parse(back.alive.timestamp) - Date.parse(back.dead.timestamp) >= 1_500, "no flapping: DEAD for at least deadRecoverMinMs");
  assert.equal((await mesh.getTask(taskId)).steps[0]!.leaseOwner, "b", "the winner's result stands");

  const report = (await cli(["lease-report", "--hours", "1", "--root", root, "--json"])).json<{ conflicts: number; reclaimsFromDeadNodes: number; out: string }>();
  assert.ok(report.conflicts >= 1);
  assert.equal(report.reclaimsFromDeadNodes, 1);

  a.child.kill("SIGKILL");
  await a.exited;
  await waitUntil(async () => (await mesh.members()).find((m) => m.nodeId === "a")?.status === "DEAD", "node a to be DEAD after kill -9");
  const pruned = (await cli(["mesh-prune", "--older-than-ms", "0", "--root", root, "--json"])).json<{ pruned: number }>();
  assert.equal(pruned.pruned, 1);
  assert.equal((await mesh.members()).some((m) => m.nodeId === "a"), false);
  b.child.kill("SIGTERM");
  assert.equal((await b.exited).code, 0);
});

test("health: exit 1 when running nodes exist but none has a fresh heartbeat, or when --node-id names a stale node", async (t) => {
  const { root, cleanup } = tempRoot();
  t.after(cleanup);
  prepareRoot(root, { suspectAfterMs: 300, deadAfterMs: 700, suspectRecoverMinMs: 0, deadRecoverMinMs: 0 });
  const first = await cli(["health", "--root", root, "--json"]);
  assert.equal(first.code, 0, first.stdout);
  const doc = first.json<{ ok: boolean; checks: { name: string; ok: boolean }[] }>();
  assert.equal(doc.ok, true);
  assert.deepEqual(doc.checks.map((c) => c.name), TEST_STORE === "sqlite"
    ? ["store-open", "store-integrity", "store-writable", "store-disk", "pragmas", "node-heartbeats"]
    : ["store-open", "store-writable", "dead-tuples", "oldest-transaction", "connections", "clock", "node-heartbeats", "cluster-settings"]);

  const w1 = spawnCli(["worker", "--root", root, "--node-id", "w1"]);
  t.after(() => { w1.child.kill("SIGKILL"); });
  await w1.waitForStderr("running on");
  await waitUntil(async () => (await cli(["health", "--node-id", "w1", "--root", root])).code === 0, "w1 to be healthy");
  w1.child.kill("SIGKILL");
  await w1.exited;
  await waitUntil(async () => (await cli(["health", "--root", root])).code === 1, "health to notice no node is alive");
  assert.equal((await cli(["health", "--node-id", "w1", "--root", root])).code, 1);
  assert.equal((await cli(["health", "--node-id", "nobody", "--root", root])).code, 1);

  const w2 = spawnCli(["worker", "--root", root, "--node-id", "w2"]);
  t.after(() => { w2.child.kill("SIGKILL"); });
  await w2.waitForStderr("running on");
  const again = await waitUntil(async () => {
    const r = await cli(["health", "--root", root, "--json"]);
    return r.code === 0 ? r : null;
  }, "health to be ok with w2 alive");
  assert.match(JSON.stringify(again.json()), /stale: w1/);
  w2.child.kill("SIGTERM");
  await w2.exited;
});
