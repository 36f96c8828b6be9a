import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { RelayMesh } from "../../src/index.js";
import { PartitionProxy } from "../proxy.js";
import { REPO, spawnCli, tempRoot, waitUntil, writeSettings, type Spawned } from "../helpers.js";
import { PG_URL, pgSchemaUrl, skipPg } from "../store/pg.js";

const LEASE_MS = 3_000;
const SUSPECT_MS = 1_000;
const DEAD_MS = 2_500;

interface LogLine { what: string; atMs: number; taskId: string; pid: number }

test("partition: a worker cut off from PostgreSQL (its connections hang, no error) stops its attempts before its leases can be taken over; another node reclaims and finishes; when the network heals its late writes are refused and recorded, no output changes, nothing is committed twice", { skip: skipPg }, async (t) => {
  const pg = pgSchemaUrl();
  t.after(() => pg.drop());
  const server = new URL(PG_URL!);
  const proxy = await PartitionProxy.start({ host: server.hostname, port: Number(server.port || 5432) });
  t.after(() => proxy.close());
  const cutUrl = new URL(pg.url);
  cutUrl.port = String(proxy.port);

  const work = tempRoot();
  t.after(work.cleanup);
  const logPath = join(work.root, "agent.log");
  const root = (name: string) => {
    const dir = join(work.root, name);
    writeSettings(dir, { leaseTimeoutMs: LEASE_MS, suspectAfterMs: SUSPECT_MS, deadAfterMs: DEAD_MS, baseBackoffMs: 50, maxBackoffMs: 200 });
    mkdirSync(join(dir, "agents"), { recursive: true });
    writeFileSync(join(dir, "agents", "modules.json"), JSON.stringify({
      agents: [{ id: "partitioned", module: join(REPO, "test/fixtures/process/partitioned.mjs"), export: "partitioned" }],
    }));
    return dir;
  };
  const [cutRoot, okRoot] = [root("cut"), root("ok")];
  const start = (nodeId: string, dir: string, url: string): Spawned => {
    const w = spawnCli(["worker", "--root", dir, "--store", url, "--node-id", nodeId, "--concurrency", "4"], { env: { RELAYMESH_TEST_LOG: logPath } });
    t.after(() => { w.child.kill("SIGKILL"); });
    return w;
  };

  const mesh = await RelayMesh.open({ root: okRoot, store: pg.url, work: false });
  t.after(() => mesh.close());
  const tasks = {
    // Finishes during the partition: its result's write is late.
    result: (await mesh.submit({ agent: "partitioned", input: { ms: 1_500 } })).taskId,
    // Writes a checkpoint during the partition: the write is late, the attempt is stopped.
    checkpoint: (await mesh.submit({ agent: "partitioned", input: { ms: 4_000, checkpointAfterMs: 1_000 } })).taskId,
    // Still running when its node is cut off: stopped before anyone may take it over.
    long: (await mesh.submit({ agent: "partitioned", input: { ms: 5_000 } })).taskId,
  };
  const ids = Object.values(tasks);

  const cut = start("cut", cutRoot, cutUrl.toString());
  await waitUntil(async () => {
    for (const id of ids) {
      const s = (await mesh.getTask(id)).steps[0]!;
      if (s.status !== "RUNNING" || s.leaseOwner !== "cut") return false;
    }
    return true;
  }, "the cut-off-to-be worker to hold all three leases", 30_000, 20);
  const held = new Map(await Promise.all(ids.map(async (id) => [id, (await mesh.getTask(id)).steps[0]!.leaseEpoch] as const)));
  proxy.pause();
  const pausedAt = Date.now();
  const ok = start("ok", okRoot, pg.url);

  await waitUntil(async () => (await mesh.listTasks({ status: "SUCCESS", limit: 1 })).total === ids.length, "the other node to finish every task", 60_000, 100);
  const healedFrom = Date.now();
  process.stderr.write(`partition: every task finished by the other node ${healedFrom - pausedAt} ms after the cut\n`);

  // Every step was taken over from "cut" (reclaimed, epoch bumped) and finished by "ok".
  const takeovers = (await mesh.ownershipEvents({ limit: 1_000 })).filter((e) => e.kind !== "lease-conflict" && e.fromNode === "cut");
  const takenAt = new Map<string, number>();
  for (const e of takeovers) if (!takenAt.has(e.taskId!) || e.atMs < takenAt.get(e.taskId!)!) takenAt.set(e.taskId!, e.atMs);
  assert.deepEqual(new Set(takenAt.keys()), new Set(ids), `each step was taken over from the cut-off node: ${JSON.stringify(takeovers)}`);

  // The cut-off node stopped each attempt (ended or aborted it) before its lease could be taken over.
  const lines = (): LogLine[] => (existsSync(logPath) ? readFileSync(logPath, "utf8").trim().split("\n") : []).map((l) => {
    const [what, at, taskId, pid] = l.split(" ");
    return { what: what!, atMs: Number(at), taskId: taskId!, pid: Number(pid) };
  });
  const cutLines = lines().filter((l) => l.pid === cut.child.pid);
  for (const [name, id] of Object.entries(tasks)) {
    const last = cutLines.filter((l) => l.taskId === id && (l.what === "end" || l.what === "abort")).at(-1);
    assert.ok(last, `the cut-off node's attempt of "${name}" ended or was stopped: ${JSON.stringify(cutLines)}`);
    process.stderr.write(`partition: "${name}" ${last.what} on the cut-off node ${last.atMs - pausedAt} ms after the cut, taken over ${takenAt.get(id)! - pausedAt} ms after it\n`);
    assert.ok(last.atMs < takenAt.get(id)!, `"${name}": the cut-off node's attempt stopped (${last.atMs}) before the takeover (${takenAt.get(id)})`);
  }
  assert.ok(cutLines.some((l) => l.taskId === tasks.long && l.what === "abort"), "the long step was aborted on the cut-off node");

  const state = async () => Promise.all(ids.map(async (id) => {
    const task = await mesh.getTask(id);
    const s = task.steps[0]!;
    return { id, status: task.status, output: s.output, epoch: s.leaseEpoch, owner: s.leaseOwner, progress: (await mesh.kv(id).get("progress")) ?? null };
  }));
  const before = await state();
  for (const s of before) {
    assert.deepEqual([s.status, s.owner, (s.output as { pid: number }).pid], ["SUCCESS", "ok", ok.child.pid], `${s.id} finished on the other node`);
    assert.ok(s.epoch > held.get(s.id)!, "taken over with a new lease epoch");
  }
  assert.deepEqual(before.find((s) => s.id === tasks.checkpoint)!.progress, { pid: ok.child.pid }, "the checkpoint is the other node's");

  // Heal: the cut-off node's late writes arrive and are refused, each recorded as a lease conflict.
  proxy.resume();
  const conflicts = await waitUntil(async () => {
    const c = (await mesh.store.listLeaseConflicts({ sinceMs: pausedAt, limit: 100 })).filter((x) => x.nodeId === "cut");
    return c.length > 0 ? c : null;
  }, "the cut-off node's late writes to be refused", 30_000, 100);
  // Let it settle, then stop it gracefully (it writes anything it still owes).
  await waitUntil(async () => (await mesh.members()).some((m) => m.nodeId === "cut" && m.lastHeartbeatMs >= healedFrom), "the healed node to heartbeat again", 30_000, 100);
  cut.child.kill("SIGTERM");
  await cut.exited;
  const refused = (await mesh.store.listLeaseConflicts({ sinceMs: pausedAt, limit: 100 })).filter((x) => x.nodeId === "cut");
  process.stderr.write(`partition: refused late writes of the cut-off node: ${JSON.stringify(refused.map((c) => [Object.keys(tasks).find((k) => tasks[k as keyof typeof tasks] === c.taskId), c.operation, c.expectedLeaseEpoch, c.actualLeaseEpoch]))}\n`);
  assert.ok(refused.length >= conflicts.length);
  assert.ok(refused.some((c) => c.taskId === tasks.result && c.operation === "complete"), "the result that came in during the partition was refused");
  for (const c of refused) {
    assert.ok(ids.includes(c.taskId));
    assert.equal(c.expectedLeaseEpoch, held.get(c.taskId), "refused: written under the epoch it held before the cut");
    assert.ok(c.actualLeaseEpoch! > c.expectedLeaseEpoch);
  }
  assert.deepEqual(await state(), before, "no step output, checkpoint, epoch or owner changed after the heal");
  // The cut-off node audited its refused writes, in the cluster-wide audit.
  const audited = (await mesh.audit.query({ action: "lease.conflict", limit: 100 })).filter((r) => r.node_id === "cut");
  assert.deepEqual(new Set(audited.map((r) => r.task_id)), new Set(refused.map((c) => c.taskId)), JSON.stringify(audited));
  // Nothing committed twice: every write of the cut-off node after the takeover is among the refused ones.
  const counters = await mesh.store.counters();
  assert.equal(counters.lease_conflict_total, refused.length, JSON.stringify(counters));
  ok.child.kill("SIGTERM");
  assert.equal((await ok.exited).code, 0);
});
