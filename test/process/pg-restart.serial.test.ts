// Restarts the shared PostgreSQL server: scripts/test.mjs runs this file last, alone.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { cli, spawnCli, tempRoot, waitUntil, TEST_STORE } from "../helpers.js";
import { prepareRoot, reader } from "./setup.js";

function restartPostgres(): void {
  const version = readdirSync("/etc/postgresql").sort().at(-1)!;
  const r = spawnSync("pg_ctlcluster", ["--skip-systemctl-redirect", version, "main", "restart"], { encoding: "utf8" });
  assert.equal(r.status, 0, `pg_ctlcluster restart: ${r.stderr}`);
}

const canRestart = TEST_STORE === "postgres" && spawnSync("pg_ctlcluster", ["--help"]).status !== null;

test("PostgreSQL restarted mid-run: no process crashes and every acknowledged task reaches a terminal state", { skip: !canRestart && "needs PostgreSQL and pg_ctlcluster" }, async (t) => {
  const { root, cleanup } = tempRoot();
  t.after(cleanup);
  prepareRoot(root, { leaseTimeoutMs: 5_000 });
  const mesh = await reader(root);
  const errors: Error[] = [];
  mesh.on("engine:error", ({ error }) => errors.push(error));
  t.after(() => mesh.close());
  const acknowledged: string[] = [];
  for (let i = 0; i < 300; i++) acknowledged.push((await mesh.submit({ agent: "record", input: { ms: 5 } })).taskId);

  const workers = ["a", "b"].map((id) => spawnCli(["worker", "--root", root, "--node-id", id, "--concurrency", "4"]));
  t.after(() => { for (const w of workers) w.child.kill("SIGKILL"); });
  await waitUntil(async () => (await mesh.stats()).tasks.SUCCESS >= 30, "work under way", 60_000);

  restartPostgres();
  // Submissions right after the restart (other processes, in-process too): those acknowledged must finish.
  const after = await Promise.all([
    ...Array.from({ length: 4 }, () => cli(["submit", "--root", root, "--agent", "record", "--input", "{\"ms\":1}", "--json"])
      .then((r) => (r.code === 0 ? r.json<{ taskId: string }>().taskId : null))),
    ...Array.from({ length: 4 }, () => mesh.submit({ agent: "record", input: { ms: 1 } }).then((r) => r.taskId, () => null)),
  ]);
  acknowledged.push(...after.filter((id): id is string => id !== null));
  assert.ok(acknowledged.length > 300, "submissions are acknowledged again after the restart");

  await waitUntil(async () => {
    try {
      const statuses = await mesh.store.taskStatuses(acknowledged);
      return [...statuses.values()].filter((s) => s === "SUCCESS" || s === "DEAD_LETTER" || s === "CANCELLED").length === acknowledged.length;
    } catch {
      return false;
    }
  }, "every acknowledged task to be terminal", 120_000, 250);
  for (const w of workers) assert.equal(w.child.exitCode, null, `worker still running; stderr: ${w.stderr()}`);
  assert.ok(workers.some((w) => /engine:error|PostgreSQL|connection/i.test(w.stderr())), "the lost connection was reported");
  for (const w of workers) w.child.kill("SIGTERM");
  const exits = await Promise.all(workers.map((w) => w.exited));
  assert.deepEqual(exits.map((e) => e.code), [0, 0]);
  const statuses = await mesh.store.taskStatuses(acknowledged);
  assert.equal([...statuses.values()].filter((s) => s === "SUCCESS").length, acknowledged.length);
});
