// Many worker processes on one PostgreSQL schema: the W1 drain (10,000 one-step echo tasks,
// enqueued, then drained) with 1, 2 and 4 worker processes (concurrency 8 each, a root of their
// own each), and the failover time over repeated kill -9 of one of three workers (kill → every
// step it held RUNNING on a survivor or finished). Needs RELAYMESH_PG_URL.
// Usage: npm run build && node dist/bench/mesh-scale.js [--tasks N] [--kills K]
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { randomBytes } from "node:crypto";
import { parseArgs } from "node:util";
import pg from "pg";
import { RelayMesh } from "../src/index.js";
import { writeSettings, REPO } from "../test/helpers.js";
import { prepareRoot } from "../test/process/setup.js";

const BIN = resolve(REPO, "bin", "relaymesh.js");
const { values } = parseArgs({ options: { tasks: { type: "string", default: "10000" }, kills: { type: "string", default: "10" }, workers: { type: "string", default: "1,2,4" } } });
const TASKS = Number(values.tasks);
const KILLS = Number(values.kills);
const PG_URL = process.env.RELAYMESH_PG_URL;
if (!PG_URL) throw new Error("set RELAYMESH_PG_URL");

function schemaUrl(): { url: string; drop(): Promise<void> } {
  const schema = `rm_bench_${randomBytes(5).toString("hex")}`;
  const u = new URL(PG_URL!);
  u.searchParams.set("schema", schema);
  return {
    url: u.toString(),
    async drop() {
      const base = new URL(PG_URL!);
      base.search = "";
      const c = new pg.Client({ connectionString: base.toString() });
      await c.connect();
      await c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await c.end();
    },
  };
}

function worker(root: string, store: string, nodeId: string): ChildProcess {
  return spawn(process.execPath, [BIN, "worker", "--root", root, "--store", store, "--node-id", nodeId, "--concurrency", "8"], { stdio: "ignore" });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function succeeded(mesh: RelayMesh): Promise<number> {
  return (await mesh.listTasks({ status: "SUCCESS", limit: 1 })).total;
}

/** W1 drain with `n` worker processes: tasks per second from the first 5% done to the last. */
async function drain(n: number): Promise<{ workers: number; tasks: number; seconds: number; stepsPerSec: number }> {
  const s = schemaUrl();
  const roots = Array.from({ length: n + 1 }, () => mkdtempSync(join(tmpdir(), "rm-bench-")));
  try {
    for (const r of roots) writeSettings(r, {});
    const mesh = await RelayMesh.open({ root: roots[0]!, store: s.url, work: false });
    const pending: Promise<unknown>[] = [];
    for (let i = 0; i < TASKS; i++) {
      pending.push(mesh.submit({ agent: "echo", input: i }));
      if (pending.length >= 500) await Promise.all(pending.splice(0));
    }
    await Promise.all(pending);
    const children = roots.slice(1).map((r, i) => worker(r, s.url, `w${i + 1}`));
    const warm = Math.ceil(TASKS * 0.05);
    let t0 = 0;
    for (;;) {
      const done = await succeeded(mesh);
      if (t0 === 0 && done >= warm) t0 = performance.now();
      if (done >= TASKS) break;
      await sleep(50);
    }
    const seconds = (performance.now() - t0) / 1000;
    for (const c of children) c.kill("SIGTERM");
    await mesh.close();
    return { workers: n, tasks: TASKS, seconds: Math.round(seconds * 100) / 100, stepsPerSec: Math.round((TASKS - warm) / seconds) };
  } finally {
    await s.drop();
    for (const r of roots) rmSync(r, { recursive: true, force: true });
  }
}

/** Tasks submitted per kill: three workers of concurrency 8 run them all at once, and the two survivors have room for the victim's. */
const PER_KILL = 16;

/** Kill → every step the victim held is RUNNING elsewhere or finished, in ms, over `kills` kills. */
async function failover(kills: number): Promise<number[]> {
  const settings = { leaseTimeoutMs: 60_000, suspectAfterMs: 1_500, deadAfterMs: 4_000 };
  const s = schemaUrl();
  const roots = Array.from({ length: 4 }, () => mkdtempSync(join(tmpdir(), "rm-bench-")));
  const out: number[] = [];
  try {
    for (const r of roots) prepareRoot(r, settings);
    const mesh = await RelayMesh.open({ root: roots[0]!, store: s.url, work: false });
    const live = new Map<string, ChildProcess>();
    for (let i = 1; i <= 3; i++) live.set(`n${i}`, worker(roots[i]!, s.url, `n${i}`));
    let generation = 3;
    for (let k = 0; k < kills; k++) {
      const ids: string[] = [];
      // Steps long enough that the victim still holds some while it is looked at; fewer than the
      // survivors' free slots, so the time measured is the failover's, not a wait for a free slot.
      for (let i = 0; i < PER_KILL; i++) ids.push((await mesh.submit({ agent: "record", input: { ms: 3_000 } })).taskId);
      // The victim: the next live worker in turn that holds steps of this round.
      const order = [...live.keys()];
      let victimId = "";
      let held: string[] = [];
      for (let tries = 0; tries < 200 && held.length === 0; tries++) {
        const owners = new Map<string, string[]>();
        for (const id of ids) {
          const st = (await mesh.getTask(id)).steps[0]!;
          if (st.status === "RUNNING" && st.leaseOwner) owners.set(st.leaseOwner, [...(owners.get(st.leaseOwner) ?? []), id]);
        }
        for (let j = 0; j < order.length && held.length === 0; j++) {
          const candidate = order[(k + j) % order.length]!;
          if (owners.has(candidate)) [victimId, held] = [candidate, owners.get(candidate)!];
        }
        if (held.length === 0) await sleep(50);
      }
      if (held.length === 0) throw new Error(`kill ${k + 1}: no worker ever held a step`);
      const victim = live.get(victimId)!;
      victim.kill("SIGKILL");
      const killedAt = performance.now();
      for (;;) {
        let waiting = 0;
        for (const id of held) {
          const st = (await mesh.getTask(id)).steps[0]!;
          if (!(st.status === "SUCCESS" || (st.status === "RUNNING" && st.leaseOwner !== victimId))) waiting++;
        }
        if (waiting === 0) break;
        await sleep(25);
      }
      out.push(Math.round(performance.now() - killedAt));
      process.stderr.write(`kill ${k + 1}: ${held.length} step(s) of ${victimId} running elsewhere after ${out[out.length - 1]} ms\n`);
      live.delete(victimId);
      const replacement = `n${++generation}`;
      live.set(replacement, worker(roots[1 + (k % 3)]!, s.url, replacement));
      while ((await succeeded(mesh)) < (k + 1) * PER_KILL) await sleep(100);
    }
    for (const c of live.values()) c.kill("SIGTERM");
    await mesh.close();
    return out;
  } finally {
    await s.drop();
    for (const r of roots) rmSync(r, { recursive: true, force: true });
  }
}

const results: unknown[] = [];
for (const n of values.workers.split(",").filter(Boolean).map(Number)) {
  const r = await drain(n);
  results.push(r);
  process.stderr.write(`W1 drain on PostgreSQL, ${n} worker process(es): ${r.stepsPerSec} steps/s (${r.seconds} s)\n`);
}
const kills = KILLS > 0 ? await failover(KILLS) : [];
const sorted = [...kills].sort((a, b) => a - b);
console.log(JSON.stringify({
  drain: results,
  failoverMs: kills.length ? { runs: kills, median: sorted[Math.floor(sorted.length / 2)], max: sorted[sorted.length - 1], deadAfterMs: 4_000, tickMs: 500 } : null,
}, null, 2));
