import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { spawnCli, tempRoot, waitUntil } from "../helpers.js";
import { prepareRoot, reader, statusCounts } from "./setup.js";

test("worker: kill -9 in the middle of 200 tasks, then a restart finishes every task", async (t) => {
  const { root, cleanup } = tempRoot();
  t.after(cleanup);
  prepareRoot(root);
  const log = join(root, "executions.log");
  const mesh = await reader(root);
  t.after(() => mesh.close());
  const ids: string[] = [];
  for (let i = 0; i < 200; i++) ids.push((await mesh.submit({ agent: "record", input: { ms: 20 } })).taskId);

  const env = { RELAYMESH_TEST_LOG: log };
  const first = spawnCli(["worker", "--root", root, "--node-id", "first", "--concurrency", "8"], { env });
  await waitUntil(async () => (await statusCounts(mesh)).SUCCESS >= 40, "40 tasks done by the first worker");
  first.child.kill("SIGKILL");
  const killed = await first.exited;
  assert.equal(killed.signal, "SIGKILL");
  const atKill = await statusCounts(mesh);
  assert.ok(atKill.SUCCESS < 200, `the kill came too late to test anything: ${JSON.stringify(atKill)}`);

  const second = spawnCli(["worker", "--root", root, "--node-id", "second", "--json"], { env });
  t.after(() => { second.child.kill("SIGKILL"); });
  await waitUntil(async () => (await statusCounts(mesh)).SUCCESS === 200, "all 200 tasks SUCCESS after the restart", 60_000);
  second.child.kill("SIGTERM");
  assert.equal((await second.exited).code, 0);

  for (const id of ids) {
    const task = await mesh.getTask(id);
    assert.equal(task.status, "SUCCESS");
    const step = task.steps[0]!;
    assert.equal(step.status, "SUCCESS");
    assert.ok(step.attempt >= 1 && step.attempt <= step.maxAttempts, `attempt ${step.attempt} of ${step.maxAttempts}`);
  }
  // Steps the first worker had in flight ran again, but each success was committed once: the
  // second worker only ran what was not already SUCCESS.
  assert.ok(existsSync(log));
  const runs = readFileSync(log, "utf8").trim().split("\n").map((l) => l.split(" "));
  const byTask = new Map<string, number>();
  for (const [taskId] of runs) byTask.set(taskId!, (byTask.get(taskId!) ?? 0) + 1);
  assert.equal(byTask.size, 200);
  const reruns = [...byTask.values()].filter((n) => n > 1).length;
  assert.ok(reruns <= 8 + 8, `at most the in-flight and prefetched steps of the killed worker ran twice, got ${reruns}`);
});
