import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { cli, spawnCli, tempRoot, waitUntil, withDeadline, REPO, TEST_STORE } from "../helpers.js";
import { reader } from "./setup.js";

const example = (name: string) => join(REPO, "examples/workflows", name);

test("run: each example workflow runs to its expected end", async (t) => {
  const { root, cleanup } = tempRoot();
  t.after(cleanup);
  for (const [file, status, code] of [["chain.json", "SUCCESS", 0], ["diamond.json", "SUCCESS", 0], ["fanout.json", "SUCCESS", 0], ["dead-letter.json", "DEAD_LETTER", 1]] as const) {
    const r = await cli(["run", example(file), "--root", root, "--json"]);
    assert.equal(r.code, code, `${file}: ${r.stderr}`);
    const task = r.json<{ status: string; steps: { stepId: string; status: string; output: any }[] }>();
    assert.equal(task.status, status, file);
    if (file === "diamond.json") {
      const report = task.steps.find((s) => s.stepId === "report")!;
      assert.deepEqual(Object.keys(report.output.deps).sort(), ["audit", "totals"]);
      assert.deepEqual(report.output.deps.totals.deps.load, { orders: [12, 30, 7] });
    }
    if (file === "dead-letter.json") {
      const byId = Object.fromEntries(task.steps.map((s) => [s.stepId, s.status]));
      assert.deepEqual(byId, { start: "SUCCESS", flaky: "DEAD_LETTER", publish: "SKIPPED", archive: "SUCCESS" });
    }
  }
});

test("cli: global options stand before or after the command, --json prints one document", async (t) => {
  const { root, cleanup } = tempRoot();
  t.after(cleanup);
  const before = await cli(["--root", root, "--json", "submit", "--agent", "echo", "--input", "\"hello\""]);
  assert.equal(before.code, 0, before.stderr);
  const { taskId, created } = before.json<{ taskId: string; created: boolean }>();
  assert.equal(created, true);
  const after = await cli(["worker", "--once=true", `--root=${root}`, "--json"]);
  assert.equal(after.code, 0, after.stderr);
  assert.deepEqual(Object.keys(after.json()).sort(), ["executed", "failed", "nodeId", "succeeded"]);
  assert.equal(after.json().succeeded, 1);
  const task = (await cli(["task", taskId, "--root", root, "--json"])).json<any>();
  assert.equal(task.status, "SUCCESS");
  assert.equal(task.steps[0].output, "hello");
  for (const key of ["taskId", "status", "priority", "createdAtMs", "updatedAtMs", "idempotencyKey", "steps"]) assert.ok(key in task, key);
  for (const key of ["stepId", "agent", "status", "attempt", "maxAttempts", "dependsOn", "output", "error", "leaseOwner", "leaseEpoch", "startedAtMs", "finishedAtMs"]) {
    assert.ok(key in task.steps[0], key);
  }
  const wf = (await cli(["workflow", taskId, "--root", root, "--json"])).json<any>();
  assert.equal(wf.taskId, taskId);
  assert.deepEqual(wf.edges, []);
  const agents = (await cli(["agents", "--json", "--root", root])).json<{ agents: { id: string; kind: string }[] }>();
  assert.deepEqual(agents.agents.filter((a) => a.kind === "builtin").map((a) => a.id).sort(), ["collect", "echo", "fail", "sleep"]);
});

test("cli: exit statuses 2 (bad input, nothing written) and 3 (not found)", async (t) => {
  const { root, cleanup } = tempRoot();
  t.after(cleanup);
  const fresh = join(root, "never-created");
  const bad = join(root, "bad.json");
  writeFileSync(bad, JSON.stringify({
    steps: [
      { id: "a", agent: "echo", dependsOn: ["c"] },
      { id: "b", agent: "nope", dependsOn: ["a"] },
      { id: "c", agent: "echo", dependsOn: ["b"] },
      { id: "c", agent: "echo", typo: 1 },
    ],
  }));
  const r = await cli(["submit-workflow", "--file", bad, "--root", fresh]);
  assert.equal(r.code, 2);
  assert.equal(r.stderr.trim().split("\n").length, 1, "one line on stderr");
  // On a shared store an agent this root lacks may be served by another node: it is checked against the store's nodes once the rest is valid.
  const expectations = ['duplicate step id "c"', "dependency cycle: a -> b -> c -> a", 'unknown field "typo"', ...(TEST_STORE === "sqlite" ? ['unknown agent "nope"'] : [])];
  for (const expected of expectations) {
    assert.ok(r.stderr.includes(expected), `stderr names ${expected}: ${r.stderr}`);
  }
  assert.ok(r.stderr.includes("bad.json"), "stderr names the file");
  assert.equal(existsSync(fresh), false, "nothing written");

  writeFileSync(bad, "{ not json");
  const notJson = await cli(["run", bad, "--root", fresh]);
  assert.equal(notJson.code, 2);
  assert.match(notJson.stderr, /bad\.json: invalid JSON/);
  assert.equal(existsSync(fresh), false);

  assert.equal((await cli(["submit", "--agent", "echo", "--priority", "urgent", "--root", root])).code, 2);
  assert.equal((await cli(["submit", "--root", root])).code, 2, "missing --agent");
  assert.equal((await cli(["tasks", "--limit", "ten", "--root", root])).code, 2);
  assert.equal((await cli(["no-such-command"])).code, 2);
  writeFileSync(join(root, "relaymesh-settings.json"), JSON.stringify({ leaseTimeoutMs: "soon" }));
  const settings = await cli(["tasks", "--root", root]);
  assert.equal(settings.code, 2);
  assert.match(settings.stderr, /leaseTimeoutMs/);
  writeFileSync(join(root, "relaymesh-settings.json"), "{}");
  const missing = await cli(["task", "00000000-0000-0000-0000-000000000000", "--root", root, "--json"]);
  assert.equal(missing.code, 3);
  assert.match(missing.stderr, /not found/);
});

test("worker: SIGTERM lets the running step finish, then exits 0", async (t) => {
  const { root, cleanup } = tempRoot();
  t.after(cleanup);
  const mesh = await reader(root);
  t.after(() => mesh.close());
  const { taskId } = await mesh.submit({ agent: "sleep", input: { ms: 800 } });
  const worker = spawnCli(["worker", "--root", root, "--json"]);
  t.after(() => { worker.child.kill("SIGKILL"); });
  await waitUntil(async () => (await mesh.getTask(taskId)).steps[0]!.status === "RUNNING", "the step to run");
  worker.child.kill("SIGTERM");
  const exit = await worker.exited;
  assert.equal(exit.code, 0, worker.stderr());
  assert.equal(JSON.parse(worker.stdout()).succeeded, 1);
  assert.equal((await mesh.getTask(taskId)).status, "SUCCESS");
});

test("worker: a second SIGTERM releases the running step's lease without counting the attempt", async (t) => {
  const { root, cleanup } = tempRoot();
  t.after(cleanup);
  const mesh = await reader(root);
  t.after(() => mesh.close());
  const { taskId } = await mesh.submit({ agent: "sleep", input: { ms: 60_000 } });
  const worker = spawnCli(["worker", "--root", root, "--json"]);
  t.after(() => { worker.child.kill("SIGKILL"); });
  await waitUntil(async () => (await mesh.getTask(taskId)).steps[0]!.status === "RUNNING", "the step to run");
  worker.child.kill("SIGTERM");
  await worker.waitForStderr("SIGTERM received");
  worker.child.kill("SIGTERM");
  const exit = await worker.exited;
  assert.equal(exit.code, 0, worker.stderr());
  const step = (await mesh.getTask(taskId)).steps[0]!;
  assert.equal(step.status, "READY");
  assert.equal(step.attempt, 0);
  assert.equal(step.leaseOwner, null);
});

test("run: SIGINT stops waiting, releases the running step's lease and exits 1; a worker finishes the task", async (t) => {
  const { root, cleanup } = tempRoot();
  t.after(cleanup);
  const flow = join(root, "flow.json");
  writeFileSync(flow, JSON.stringify({ steps: [{ id: "a", agent: "sleep", input: { ms: 400 } }, { id: "b", agent: "echo", dependsOn: ["a"] }] }));
  const mesh = await reader(root);
  t.after(() => mesh.close());
  const run = spawnCli(["run", flow, "--root", root, "--json"]);
  t.after(() => { run.child.kill("SIGKILL"); });
  const taskId = await waitUntil(async () => {
    const { tasks } = await mesh.listTasks({ limit: 1 });
    const task = tasks[0] ? await mesh.getTask(tasks[0].taskId) : null;
    return task?.steps[0]!.status === "RUNNING" ? task.taskId : null;
  }, "the first step to run");
  run.child.kill("SIGINT");
  const exit = await run.exited;
  assert.equal(exit.code, 1);
  assert.match(run.stderr(), /interrupted/);
  assert.equal(JSON.parse(run.stdout()).taskId, taskId);
  const step = (await mesh.getTask(taskId)).steps[0]!;
  assert.equal(step.status, "READY", "the lease was released");
  const worker = await cli(["worker", "--once", "--root", root, "--json"]);
  assert.equal(worker.code, 0, worker.stderr);
  assert.equal((await mesh.getTask(taskId)).status, "SUCCESS");
});

test("worker: while draining after SIGTERM it keeps heartbeating, so leases hold and a cancel elsewhere still stops the step", async (t) => {
  const { root, cleanup } = tempRoot();
  t.after(cleanup);
  writeFileSync(join(root, "relaymesh-settings.json"), JSON.stringify({ leaseTimeoutMs: 1_000 }));
  const mesh = await reader(root);
  t.after(() => mesh.close());
  // A drain longer than the lease: without heartbeats another worker would reclaim the step.
  const long = await mesh.submit({ agent: "sleep", input: { ms: 2_500 } });
  const draining = spawnCli(["worker", "--root", root, "--node-id", "draining", "--concurrency", "1", "--json"]);
  t.after(() => { draining.child.kill("SIGKILL"); });
  await waitUntil(async () => (await mesh.getTask(long.taskId)).steps[0]!.status === "RUNNING", "the long step to run");
  draining.child.kill("SIGTERM");
  const other = spawnCli(["worker", "--root", root, "--node-id", "other"]);
  t.after(() => { other.child.kill("SIGKILL"); });
  assert.equal((await draining.exited).code, 0);
  const done = await mesh.getTask(long.taskId);
  assert.equal(done.status, "SUCCESS");
  assert.equal(done.steps[0]!.leaseOwner, "draining");
  assert.equal(done.steps[0]!.attempt, 1);
  assert.deepEqual(await mesh.leaseConflicts(), []);
  other.child.kill("SIGTERM");
  await other.exited;

  // Cancelled from another process while the worker drains: the next heartbeat is refused and the step aborted.
  const nap = await mesh.submit({ agent: "sleep", input: { ms: 60_000 } });
  const worker = spawnCli(["worker", "--root", root, "--json"]);
  t.after(() => { worker.child.kill("SIGKILL"); });
  await waitUntil(async () => (await mesh.getTask(nap.taskId)).steps[0]!.status === "RUNNING", "the nap to run");
  worker.child.kill("SIGTERM");
  await worker.waitForStderr("SIGTERM received");
  assert.equal((await cli(["cancel", nap.taskId, "--root", root])).code, 0);
  const exit = await withDeadline(worker.exited, 10_000, "the draining worker to notice the cancel and exit");
  assert.equal(exit.code, 0);
  assert.equal((await mesh.getTask(nap.taskId)).status, "CANCELLED");
});
