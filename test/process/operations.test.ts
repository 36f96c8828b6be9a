import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { cli, spawnCli, tempRoot, waitUntil, withDeadline, REPO, TEST_STORE } from "../helpers.js";
import { prepareRoot, reader } from "./setup.js";

test("cancel --mode hard: a running sleep step is aborted, the task ends CANCELLED at once and the late result is refused", async (t) => {
  const { root, cleanup } = tempRoot();
  t.after(cleanup);
  prepareRoot(root, { leaseTimeoutMs: 3_000 });
  const mesh = await reader(root);
  t.after(() => mesh.close());
  const { taskId } = await mesh.submit({ agent: "record", input: { ms: 30_000 } });
  const worker = spawnCli(["worker", "--root", root, "--node-id", "w1", "--json"]);
  t.after(() => { worker.child.kill("SIGKILL"); });
  await waitUntil(async () => (await mesh.getTask(taskId)).steps[0]!.status === "RUNNING", "the step to run");

  const started = Date.now();
  const r = await cli(["cancel", taskId, "--mode", "hard", "--reason", "operator", "--root", root, "--json"]);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(r.json(), { taskId, status: "CANCELLED", cancelledSteps: ["main"] });
  assert.equal((await mesh.getTask(taskId)).status, "CANCELLED");
  assert.ok(Date.now() - started < 5_000);

  // The worker learns at its next heartbeat: refused, recorded, and the agent is aborted.
  await waitUntil(async () => (await mesh.leaseConflicts()).some((c) => c.taskId === taskId && c.nodeId === "w1"), "the worker's write to be refused");
  worker.child.kill("SIGTERM");
  const exit = await worker.exited;
  assert.equal(exit.code, 0);
  assert.equal(JSON.parse(worker.stdout()).succeeded, 0);
  const task = await mesh.getTask(taskId);
  assert.equal(task.status, "CANCELLED");
  assert.equal(task.steps[0]!.status, "CANCELLED");
  assert.equal(task.steps[0]!.output, null);
  const audit = (await cli(["audit-query", "--task-id", taskId, "--action", "task.cancel", "--root", root, "--json"])).json<{ records: any[] }>();
  assert.equal(audit.records.length, 1);
  assert.equal(audit.records[0].details.reason, "operator");
});

test("cancel --mode soft: the running step of a 3-step chain finishes, the rest is cancelled", async (t) => {
  const { root, cleanup } = tempRoot();
  t.after(cleanup);
  prepareRoot(root);
  const mesh = await reader(root);
  t.after(() => mesh.close());
  const { taskId } = await mesh.submitWorkflow({ steps: [
    { id: "a", agent: "record", input: { ms: 4_000 } },
    { id: "b", agent: "echo", dependsOn: ["a"] },
    { id: "c", agent: "echo", dependsOn: ["b"] },
  ] });
  const worker = spawnCli(["worker", "--root", root]);
  t.after(() => { worker.child.kill("SIGKILL"); });
  await waitUntil(async () => (await mesh.getTask(taskId)).steps[0]!.status === "RUNNING", "step a to run");
  const r = await cli(["cancel", taskId, "--mode", "soft", "--root", root, "--json"]);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(r.json<{ cancelledSteps: string[] }>().cancelledSteps.sort(), ["b", "c"]);
  const done = await mesh.waitFor(taskId, { timeoutMs: 20_000 });
  assert.equal(done.status, "CANCELLED");
  assert.deepEqual(done.steps.map((s) => [s.stepId, s.status]), [["a", "SUCCESS"], ["b", "CANCELLED"], ["c", "CANCELLED"]]);
});

test("replay: a dead-lettered diamond resumes only its dead branch", async (t) => {
  const { root, cleanup } = tempRoot();
  t.after(cleanup);
  prepareRoot(root);
  const log = join(root, "runs.log");
  const okFile = join(root, "ok");
  const mesh = await reader(root);
  t.after(() => mesh.close());
  const { taskId } = await mesh.submitWorkflow({ steps: [
    { id: "a", agent: "echo", input: 1 },
    { id: "b", agent: "flaky", input: { okFile }, dependsOn: ["a"], retry: { maxAttempts: 2, baseBackoffMs: 10, maxBackoffMs: 10 } },
    { id: "c", agent: "flaky", input: { okFile: join(REPO, "package.json") }, dependsOn: ["a"] },
    { id: "d", agent: "collect", dependsOn: ["b", "c"] },
  ] });
  const env = { RELAYMESH_TEST_LOG: log };
  const first = spawnCli(["worker", "--root", root], { env });
  t.after(() => { first.child.kill("SIGKILL"); });
  const dead = await mesh.waitFor(taskId, { timeoutMs: 20_000 });
  assert.equal(dead.status, "DEAD_LETTER");
  assert.deepEqual(dead.steps.map((s) => [s.stepId, s.status]), [["a", "SUCCESS"], ["b", "DEAD_LETTER"], ["c", "SUCCESS"], ["d", "SKIPPED"]]);
  first.child.kill("SIGTERM");
  await first.exited;

  writeFileSync(okFile, "");
  const r = await cli(["replay", taskId, "--root", root, "--json"]);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(r.json(), { replayed: [taskId] });
  const again = await cli(["worker", "--once", "--root", root, "--json"], { env });
  assert.equal(again.code, 0, again.stderr);
  const done = await mesh.getTask(taskId);
  assert.equal(done.status, "SUCCESS");
  const byId = Object.fromEntries(done.steps.map((s) => [s.stepId, s]));
  assert.equal(byId.a!.attempt, 1);
  assert.equal(byId.c!.attempt, 1);
  assert.equal(byId.b!.attempt, 1, "attempts count again from the replay round");
  assert.deepEqual((byId.d!.output as { deps: Record<string, unknown> }).deps.b, { ok: true, stepId: "b" });
  const runs = readFileSync(log, "utf8").trim().split("\n").map((l) => l.split(" ")[1]);
  assert.deepEqual(runs.filter((s) => s === "c"), ["c"], "c ran once, before the replay");
  assert.deepEqual(runs.filter((s) => s === "b"), ["b", "b", "b"], "b: two attempts, then one in the replay round");
  assert.equal(again.json().executed, 2, "only b and d ran in the replay");

  const notDead = await cli(["replay", taskId, "--root", root]);
  assert.equal(notDead.code, 1);
  assert.match(notDead.stderr, /only DEAD_LETTER tasks can be replayed/);
  assert.equal((await cli(["replay", "nope", "--root", root])).code, 3);
});

test("submit --traceparent: the caller's trace reaches the agent and the audit log", async (t) => {
  const { root, cleanup } = tempRoot();
  t.after(cleanup);
  prepareRoot(root);
  const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  const r = await cli(["submit", "--agent", "record", "--input", "{}", "--traceparent", tp, "--root", root, "--json"]);
  assert.equal(r.code, 0, r.stderr);
  const { taskId } = r.json<{ taskId: string }>();
  assert.equal((await cli(["worker", "--once", "--root", root])).code, 0);
  const task = (await cli(["task", taskId, "--root", root, "--json"])).json<any>();
  const [, traceId, spanId] = (task.steps[0].output.traceparent as string).split("-");
  assert.equal(traceId, "4bf92f3577b34da6a3ce929d0e0e4736", "the step runs in the caller's trace");
  assert.notEqual(spanId, "00f067aa0ba902b7", "with a span of its own");
  const submitted = (await cli(["audit-query", "--task-id", taskId, "--action", "task.submit", "--root", root, "--json"])).json<{ records: any[] }>().records;
  assert.equal(submitted[0].trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
  assert.equal(submitted[0].span_id, "00f067aa0ba902b7");
  const bad = await cli(["submit", "--agent", "echo", "--traceparent", "nonsense", "--root", root]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /traceparent/);
});

test("audit log: two processes writing at once produce valid JSONL records with every field", async (t) => {
  const { root, cleanup } = tempRoot();
  t.after(cleanup);
  await cli(["init", "--root", root]);
  const writer = () => new Promise<number | null>((resolve) => {
    spawn(process.execPath, [join(REPO, "test/fixtures/process/submit-many.mjs"), root, "300"], { stdio: "inherit" }).on("close", resolve);
  });
  const codes = await withDeadline(Promise.all([writer(), writer()]), 60_000, "the two writers");
  assert.deepEqual(codes, [0, 0]);
  const lines = readFileSync(join(root, "audit", "audit.log"), "utf8").split("\n").filter((l) => l !== "");
  const records = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  const submits = records.filter((r) => r.action === "task.submit");
  assert.equal(submits.length, 600);
  assert.equal(new Set(submits.map((r) => r.task_id)).size, 600);
  for (const r of records) {
    for (const field of ["timestamp", "action", "actor", "resource", "result", "trace_id", "span_id", "task_id", "step_id", "details"]) {
      assert.ok(field in r, `${field} in ${JSON.stringify(r)}`);
    }
    assert.ok(!Number.isNaN(Date.parse(r.timestamp as string)));
  }
  for (const r of submits) assert.match(r.trace_id as string, /^[0-9a-f]{32}$/);
  assert.equal(new Set(submits.map((r) => r.actor)).size, 2);
  // The writers work on the root's own SQLite store, whose audit is this JSONL file: read it back there.
  const tail = (await cli(["audit-tail", "--lines", "5", "--root", root, "--json"], { env: { RELAYMESH_STORE: "" } })).json<{ records: unknown[] }>();
  assert.equal(tail.records.length, 5);
});

test("reload-settings: reports changed field names, rejects an invalid file and keeps the running settings", async (t) => {
  const { root, cleanup } = tempRoot();
  t.after(cleanup);
  await cli(["init", "--root", root]);
  const settings = join(root, "relaymesh-settings.json");
  const worker = spawnCli(["worker", "--root", root, "--node-id", "live", "--settings-reload-ms", "100"]);
  t.after(() => { worker.child.kill("SIGKILL"); });
  await worker.waitForStderr("running on");

  writeFileSync(settings, JSON.stringify({ leaseTimeoutMs: 5_000, maxAttempts: 4 }));
  const r = await cli(["reload-settings", "--root", root, "--json"]);
  assert.equal(r.code, 0, r.stderr);
  // On a shared store the watching worker may publish the file to the cluster first; then this reload finds nothing new.
  if (TEST_STORE === "sqlite") assert.deepEqual(r.json(), { changedFields: ["leaseTimeoutMs", "maxAttempts"] });
  assert.ok(!r.stdout.includes("5000"), "values are never printed");
  const live = await waitUntil(async () => {
    const recs = (await cli(["audit-query", "--action", "settings.reload", "--root", root, "--json"])).json<{ records: any[] }>().records;
    return recs.find((x) => x.actor === "node:live" && x.result === "ok");
  }, "the worker to pick the change up");
  assert.deepEqual(live.details.changedFields, ["leaseTimeoutMs", "maxAttempts"]);

  writeFileSync(settings, JSON.stringify({ leaseTimeoutMs: "soon" }));
  const bad = await cli(["reload-settings", "--root", root, "--json"]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /leaseTimeoutMs/);
  await worker.waitForStderr("leaseTimeoutMs");

  writeFileSync(settings, JSON.stringify({ leaseTimeoutMs: 5_000, maxAttempts: 5 }));
  const next = await cli(["reload-settings", "--root", root, "--json"]);
  if (TEST_STORE === "sqlite") assert.deepEqual(next.json(), { changedFields: ["maxAttempts"] }, "the invalid file changed nothing");
  const history = (await cli(["settings-history", "--root", root, "--json"])).json<{ history: { changedFields: string[]; result: string }[] }>().history;
  assert.ok(history.length >= 3);
  if (TEST_STORE === "sqlite") assert.deepEqual(history[0]!.changedFields, ["maxAttempts"]);
  else assert.ok(history.some((h) => h.changedFields.length === 1 && h.changedFields[0] === "maxAttempts"), "the change is in the history");
  assert.ok(history.some((h) => h.result === "error"));
  const records = (await cli(["audit-query", "--action", "settings.reload", "--root", root, "--json"])).json<{ records: any[] }>().records;
  assert.ok(records.some((x) => x.actor === "node:live" && x.result === "error"), "the worker rejected the invalid file");
  worker.child.kill("SIGTERM");
  assert.equal((await worker.exited).code, 0);
});
