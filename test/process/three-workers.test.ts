import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { spawnCli, tempRoot, waitUntil, TEST_STORE } from "../helpers.js";
import { prepareRoot, reader, statusCounts } from "./setup.js";

const TASKS = 10_000;

test("worker: three processes drain 10,000 steps from PostgreSQL, each success committed exactly once", { skip: TEST_STORE !== "postgres" && "PostgreSQL runs only" }, async (t) => {
  const { root, cleanup } = tempRoot();
  t.after(cleanup);
  prepareRoot(root, { leaseTimeoutMs: 30_000 });
  const log = join(root, "executions.log");
  const mesh = await reader(root);
  t.after(() => mesh.close());
  await Promise.all(Array.from({ length: 16 }, async (_, lane) => {
    for (let i = lane; i < TASKS; i += 16) await mesh.submit({ agent: "record", input: { n: i } });
  }));

  const env = { RELAYMESH_TEST_LOG: log };
  const workers = ["a", "b", "c"].map((id) => spawnCli(["worker", "--root", root, "--node-id", id, "--concurrency", "8", "--json"], { env }));
  t.after(() => { for (const w of workers) w.child.kill("SIGKILL"); });
  await waitUntil(async () => (await statusCounts(mesh)).SUCCESS === TASKS, `${TASKS} tasks SUCCESS`, 300_000, 250);
  for (const w of workers) w.child.kill("SIGTERM");
  const exits = await Promise.all(workers.map((w) => w.exited));
  assert.deepEqual(exits.map((e) => e.code), [0, 0, 0]);

  const reports = workers.map((w) => JSON.parse(w.stdout()) as { succeeded: number; failed: number });
  assert.equal(reports.reduce((n, r) => n + r.succeeded, 0), TASKS, JSON.stringify(reports));
  assert.ok(reports.every((r) => r.succeeded > 0), `every worker took work: ${JSON.stringify(reports)}`);

  const lines = readFileSync(log, "utf8").trim().split("\n");
  assert.equal(lines.length, TASKS, "every step ran exactly once");
  assert.equal(new Set(lines.map((l) => l.split(" ")[0])).size, TASKS);
  const steps: Record<string, unknown>[] = [];
  await mesh.store.exportRows((page) => { if (page.table === "steps") steps.push(...page.rows); });
  assert.equal(steps.length, TASKS);
  assert.ok(steps.every((s) => s.status === "SUCCESS" && s.attempt === 1 && s.lease_epoch === 1), "one claim and one success per step");
  assert.equal((await mesh.store.listLeaseConflicts({ sinceMs: 0, limit: 10 })).length, 0);
});
