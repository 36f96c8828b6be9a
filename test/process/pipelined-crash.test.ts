import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { REPO, tempRoot, TEST_STORE, waitUntil } from "../helpers.js";
import { prepareRoot, reader, statusCounts } from "./setup.js";

const FIXTURE = join(REPO, "test/fixtures/process/pipelined.mjs");

function lines(file: string): string[] {
  return existsSync(file) ? readFileSync(file, "utf8").split("\n").filter((l) => l.length > 0) : [];
}

function start(root: string, mode: "submit" | "work", ackLog: string, commitLog: string, executions: string) {
  const child = spawn(process.execPath, [FIXTURE, root, mode, ackLog, commitLog], {
    stdio: ["ignore", "ignore", "inherit"], env: { ...process.env, RELAYMESH_TEST_LOG: executions },
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on("exit", (code, signal) => resolve({ code, signal })));
  return { child, exited };
}

test("store thread: kill -9 while submissions are committed behind group commits loses no acknowledged submission and commits no success twice", { skip: TEST_STORE === "postgres" ? "the store thread is the SQLite store's" : false }, async (t) => {
  const { root, cleanup } = tempRoot();
  const stops: (() => unknown)[] = [];
  t.after(async () => { for (const stop of stops.reverse()) await stop(); cleanup(); });
  prepareRoot(root);
  const ackLog = join(root, "acked.log");
  const commitLog = join(root, "committed.log");
  const executions = join(root, "executions.log");

  // Work and submissions at once: submissions arriving during a group commit go out in a commit of their own behind it.
  const first = start(root, "submit", ackLog, commitLog, executions);
  stops.push(() => { first.child.kill("SIGKILL"); });
  await waitUntil(() => lines(ackLog).length >= 400 && lines(commitLog).length >= 100, "400 acknowledged submissions and 100 committed successes", 60_000);
  first.child.kill("SIGKILL");
  assert.equal((await first.exited).signal, "SIGKILL");
  const acked = new Set(lines(ackLog));

  const mesh = await reader(root);
  stops.push(() => mesh.close());
  for (const id of acked) assert.notEqual(await mesh.store.getTask(id), null, `acknowledged task ${id} is in the store`);
  const total = (await mesh.listTasks({ limit: 1 })).total;
  assert.ok(total >= acked.size);

  const second = start(root, "work", ackLog, commitLog, executions);
  stops.push(async () => { second.child.kill("SIGTERM"); await second.exited; });
  await waitUntil(async () => (await statusCounts(mesh)).SUCCESS === total, `all ${total} tasks SUCCESS after the restart`, 120_000);
  second.child.kill("SIGTERM");
  assert.equal((await second.exited).code, 0);

  for (const id of acked) assert.equal((await mesh.getTask(id)).status, "SUCCESS", `task ${id}`);
  // A success is committed once: step:succeeded (emitted after its commit) at most once per step, across both processes.
  const committed = new Map<string, number>();
  for (const l of lines(commitLog)) {
    const [taskId, stepId] = l.split(" ");
    const key = `${taskId} ${stepId}`;
    committed.set(key, (committed.get(key) ?? 0) + 1);
  }
  const twice = [...committed].filter(([, n]) => n > 1);
  assert.deepEqual(twice, [], "no step's success was committed twice");
  // Every step ran at least once; reruns are bounded by what the killed process held: concurrency 8 and its prefetch (at most 16 × 8).
  const runs = new Map<string, number>();
  for (const l of lines(executions)) runs.set(l.split(" ")[0]!, (runs.get(l.split(" ")[0]!) ?? 0) + 1);
  assert.equal(runs.size, total);
  const reruns = [...runs.values()].filter((n) => n > 1).length;
  assert.ok(reruns <= 8 + 16 * 8, `at most the in-flight and prefetched steps of the killed process ran twice, got ${reruns}`);
});
