import { test } from "node:test";
import assert from "node:assert/strict";
import { RelayMesh } from "../../src/index.js";
import { cli, spawnCli, tempRoot, waitUntil, type Spawned } from "../helpers.js";
import { pgSchemaUrl, skipPg } from "../store/pg.js";
import { prepareRoot } from "./setup.js";

const STEPS = 30;
const PER_TICK = 10;
const BUSY = JSON.stringify({ cpu: 0.95, memory: 0.1 });
const IDLE = JSON.stringify({ cpu: 0.05, memory: 0.1 });

test("resource_usage: a dead node's 30 steps go mostly to the idle nodes, not to the one reporting high load, and each tick takes back at most meshRecoverPerTick", { skip: skipPg }, async (t) => {
  const pg = pgSchemaUrl();
  t.after(() => pg.drop());
  const settings = { claimPolicy: "resource_usage", leaseTimeoutMs: 60_000, suspectAfterMs: 1_500, deadAfterMs: 4_000, meshRecoverPerTick: PER_TICK };
  const root = (nodeId: string) => {
    const r = tempRoot();
    t.after(r.cleanup);
    prepareRoot(r.root, settings);
    return { nodeId, root: r.root };
  };
  const [victim, busy, idle1, idle2] = [root("v"), root("busy"), root("idle-1"), root("idle-2")];
  const start = (n: { nodeId: string; root: string }, usage: string, concurrency: number): Spawned => {
    const w = spawnCli(["worker", "--root", n.root, "--store", pg.url, "--node-id", n.nodeId, "--concurrency", String(concurrency)],
      { env: { RELAYMESH_TEST_MACHINE_USAGE: usage } });
    t.after(() => { w.child.kill("SIGCONT"); w.child.kill("SIGKILL"); });
    return w;
  };

  // A node given a malformed test usage is refused at start (exit 2), naming the variable.
  const bad = await cli(["worker", "--once", "--root", busy.root, "--store", pg.url], { env: { RELAYMESH_TEST_MACHINE_USAGE: "{\"cpu\":\"high\"}" } });
  assert.equal(bad.code, 2, bad.stderr);
  assert.match(bad.stderr, /RELAYMESH_TEST_MACHINE_USAGE/);

  const mesh = await RelayMesh.open({ root: victim.root, store: pg.url, work: false });
  t.after(() => mesh.close());
  const ids: string[] = [];
  for (let i = 0; i < STEPS; i++) ids.push((await mesh.submit({ agent: "record", input: { ms: 3_000, i } })).taskId);
  // The victim alone claims all 30, then freezes (its heartbeats stop) and is killed once the others run.
  const v = start(victim, IDLE, STEPS);
  const ownedBy = async (nodeId: string) => {
    let n = 0;
    for (const id of ids) {
      const s = (await mesh.getTask(id)).steps[0]!;
      if (s.status === "RUNNING" && s.leaseOwner === nodeId) n++;
    }
    return n;
  };
  await waitUntil(async () => (await ownedBy("v")) === STEPS, "the victim to hold all 30 steps", 30_000, 20);
  v.child.kill("SIGSTOP");
  // The idle nodes have room for the whole backlog between them: where it goes is the policy's choice, not a wait for a free slot.
  const survivors = [start(busy, BUSY, 4), start(idle1, IDLE, STEPS / 2 + 1), start(idle2, IDLE, STEPS / 2 + 1)];
  await waitUntil(async () => {
    const members = await mesh.members();
    return ["busy", "idle-1", "idle-2"].every((id) => members.some((m) => m.nodeId === id && m.status === "ALIVE" && m.load !== null));
  }, "the three survivors to report their load", 30_000, 50);
  v.child.kill("SIGKILL");
  await v.exited;

  await waitUntil(async () => (await mesh.listTasks({ status: "SUCCESS", limit: 1 })).total === STEPS, "every task SUCCESS", 90_000, 200);
  const ranOn = new Map<string, number>();
  for (const id of ids) {
    const s = (await mesh.getTask(id)).steps[0]!;
    ranOn.set(s.leaseOwner!, (ranOn.get(s.leaseOwner!) ?? 0) + 1);
  }
  const split = { busy: ranOn.get("busy") ?? 0, idle1: ranOn.get("idle-1") ?? 0, idle2: ranOn.get("idle-2") ?? 0 };
  process.stderr.write(`resource_usage takeover split: ${JSON.stringify(split)}\n`);
  assert.equal(split.busy + split.idle1 + split.idle2, STEPS, `every step finished on a survivor: ${JSON.stringify([...ranOn])}`);
  assert.ok(split.busy <= 5, `the loaded node took at most 5 of 30: ${JSON.stringify(split)}`);
  assert.ok(split.idle1 > split.busy && split.idle2 > split.busy, `each idle node took more than the loaded one: ${JSON.stringify(split)}`);

  const reclaims = (await mesh.ownershipEvents({ limit: 1_000 })).filter((e) => e.kind === "dead-owner-reclaim" && e.fromNode === "v");
  assert.equal(reclaims.length, STEPS, "one reclaim event per step of the dead node");
  const perTick = new Map<string, number>();
  for (const e of reclaims) perTick.set(`${e.nodeId}@${e.atMs}`, (perTick.get(`${e.nodeId}@${e.atMs}`) ?? 0) + 1);
  process.stderr.write(`reclaims per (node, tick): ${JSON.stringify([...perTick])}\n`);
  assert.ok([...perTick.values()].every((n) => n <= PER_TICK), `at most ${PER_TICK} per tick: ${JSON.stringify([...perTick])}`);
  assert.ok(perTick.size >= STEPS / PER_TICK);
  for (const w of survivors) w.child.kill("SIGTERM");
  for (const w of survivors) assert.equal((await w.exited).code, 0);
});
