import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { spawnCli, tempRoot, waitUntil } from "../helpers.js";
import { prepareRoot, reader, statusCounts } from "./setup.js";

test("worker: two processes on one root drain 1,000 tasks, each step succeeding exactly once", async (t) => {
  const { root, cleanup } = tempRoot();
  t.after(cleanup);
  prepareRoot(root, { leaseTimeoutMs: 30_000 });
  const log = join(root, "executions.log");
  const mesh = await reader(root);
  t.after(() => mesh.close());
  await Promise.all(Array.from({ length: 8 }, async (_, lane) => {
    for (let i = lane; i < 1000; i += 8) await mesh.submit({ agent: "record", input: { n: i } });
  }));

  const env = { RELAYMESH_TEST_LOG: log };
  const workers = ["a", "b"].map((id) => spawnCli(["worker", "--root", root, "--node-id", id, "--concurrency", "8", "--json"], { env }));
  t.after(() => { for (const w of workers) w.child.kill("SIGKILL"); });
  await waitUntil(async () => (await statusCounts(mesh)).SUCCESS === 1000, "1,000 tasks SUCCESS", 120_000);
  for (const w of workers) w.child.kill("SIGTERM");
  const exits = await Promise.all(workers.map((w) => w.exited));
  assert.deepEqual(exits.map((e) => e.code), [0, 0]);

  const reports = workers.map((w) => JSON.parse(w.stdout()) as { nodeId: string; executed: number; succeeded: number; failed: number });
  assert.equal(reports[0]!.succeeded + reports[1]!.succeeded, 1000, JSON.stringify(reports));
  assert.ok(reports.every((r) => r.failed === 0), JSON.stringify(reports));

  const lines = readFileSync(log, "utf8").trim().split("\n");
  assert.equal(lines.length, 1000, "every step ran exactly once");
  assert.equal(new Set(lines.map((l) => l.split(" ")[0])).size, 1000);
  const { tasks } = await mesh.listTasks({ limit: 1000 });
  for (const summary of tasks) {
    const step = (await mesh.getTask(summary.taskId)).steps[0]!;
    assert.equal(step.attempt, 1);
    assert.equal(step.leaseEpoch, 1);
  }
});
