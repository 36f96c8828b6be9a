import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { cli, spawnCli, tempRoot, waitUntil, REPO } from "../helpers.js";
import { prepareRoot, reader } from "./setup.js";

test("cluster-epoch-bump: fences every running step; its owner's next write is refused and the step runs again", async (t) => {
  const { root, cleanup } = tempRoot();
  t.after(cleanup);
  prepareRoot(root, { leaseTimeoutMs: 3_000 });
  const mesh = await reader(root);
  t.after(() => mesh.close());
  assert.deepEqual((await cli(["cluster-state", "--root", root, "--json"])).json(), { clusterEpoch: 0 });
  // Long enough that the bump (a CLI process start on a loaded machine) lands while it runs.
  const { taskId } = await mesh.submit({ agent: "record", input: { ms: 5_000 } });
  const worker = spawnCli(["worker", "--root", root, "--node-id", "w"]);
  t.after(() => { worker.child.kill("SIGKILL"); });
  const running = await waitUntil(async () => {
    const step = (await mesh.getTask(taskId)).steps[0]!;
    return step.status === "RUNNING" ? step : null;
  }, "the step to run");

  const r = await cli(["cluster-epoch-bump", "--reason", "drill", "--root", root, "--json"]);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(r.json(), { clusterEpoch: 1, fencedSteps: 1 });
  assert.deepEqual((await cli(["cluster-state", "--root", root, "--json"])).json(), { clusterEpoch: 1 });
  await waitUntil(async () => (await mesh.leaseConflicts()).some((c) => c.taskId === taskId && c.expectedLeaseEpoch === running.leaseEpoch), "the fenced owner's write to be refused");
  const done = await mesh.waitFor(taskId, { timeoutMs: 20_000 });
  assert.equal(done.status, "SUCCESS");
  assert.ok(done.steps[0]!.leaseEpoch > running.leaseEpoch + 1, "fenced, then claimed again");
  assert.equal(done.steps[0]!.attempt, 1, "the fenced attempt is not counted");
  assert.match((await cli(["metrics", "--root", root])).stdout, /^relaymesh_cluster_epoch 1$/m);
  const audit = (await cli(["audit-query", "--action", "cluster.epoch-bump", "--root", root, "--json"])).json<{ records: any[] }>();
  assert.equal(audit.records[0].details.reason, "drill");
  worker.child.kill("SIGTERM");
  await worker.exited;
  assert.equal((await cli(["cluster-epoch-bump", "--root", root])).code, 2, "--reason is required");
});

test("snapshot-export / snapshot-import: a consistent copy restores into a new root, never over a root in use", async (t) => {
  const { root, cleanup } = tempRoot();
  t.after(cleanup);
  const run = await cli(["run", join(REPO, "examples/workflows/diamond.json"), "--root", root, "--json"]);
  assert.equal(run.code, 0, run.stderr);
  const { taskId } = run.json<{ taskId: string }>();
  writeFileSync(join(root, "relaymesh-settings.json"), JSON.stringify({ maxAttempts: 5 }));
  const out = join(root, "snap");
  const exp = await cli(["snapshot-export", "--out", out, "--root", root, "--json"]);
  assert.equal(exp.code, 0, exp.stderr);
  assert.deepEqual(exp.json(), { out });
  for (const f of ["relaymesh.db", "snapshot.json", "relaymesh-settings.json", "audit"]) assert.ok(existsSync(join(out, f)), f);
  assert.equal((await cli(["snapshot-export", "--out", out, "--root", root])).code, 2, "never into a non-empty folder");

  const fresh = join(root, "restored");
  const imp = await cli(["snapshot-import", "--in", out, "--root", fresh, "--json"]);
  assert.equal(imp.code, 0, imp.stderr);
  assert.deepEqual(imp.json(), { in: out });
  const task = (await cli(["task", taskId, "--root", fresh, "--json"])).json<{ status: string; steps: { output: unknown }[] }>();
  assert.equal(task.status, "SUCCESS");
  const original = (await cli(["task", taskId, "--root", root, "--json"])).json<{ steps: { output: unknown }[] }>();
  assert.deepEqual(task.steps.map((s) => s.output), original.steps.map((s) => s.output));
  assert.ok(existsSync(join(fresh, "relaymesh-settings.json")));
  const again = await cli(["snapshot-import", "--in", out, "--root", fresh]);
  assert.equal(again.code, 2);
  assert.match(again.stderr, /already holds 1 task/);
  assert.equal((await cli(["snapshot-import", "--in", root, "--root", join(root, "x")])).code, 2, "not a snapshot");
});
