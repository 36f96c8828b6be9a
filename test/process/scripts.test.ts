import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { cli, spawnCli, tempRoot, waitUntil, REPO, TEST_STORE } from "../helpers.js";
import { reader } from "./setup.js";
import { writeSettings } from "../helpers.js";

function scriptsRoot(root: string, agents: unknown[], settings: Record<string, unknown> = {}): void {
  writeSettings(root, { leaseTimeoutMs: 1_000, baseBackoffMs: 50, maxBackoffMs: 200, ...settings });
  mkdirSync(join(root, "agents"), { recursive: true });
  writeFileSync(join(root, "agents", "scripts.json"), JSON.stringify({ agents }));
}

const counter = { id: "counter", command: ["python3", join(REPO, "test/fixtures/process/counter.py")], timeoutMs: 60_000 };

test("script agents: the example Python, persistent Python and Node agents run a workflow end to end", async (t) => {
  const { root, cleanup } = tempRoot();
  t.after(cleanup);
  mkdirSync(join(root, "agents"), { recursive: true });
  const examples = JSON.parse(readFileSync(join(REPO, "examples/agents/scripts.json"), "utf8")) as { agents: { command: string[] }[] };
  // The example's paths are relative to a root inside the repository: make them absolute here.
  for (const a of examples.agents) a.command = a.command.map((c) => (c.startsWith("..") ? join(REPO, c.replace(/^\.\.\//, "")) : c));
  writeFileSync(join(root, "agents", "scripts.json"), JSON.stringify(examples));
  const r = await cli(["run", join(REPO, "examples/workflows/scripts.json"), "--root", root, "--json"], { timeoutMs: 60_000 });
  assert.equal(r.code, 0, r.stderr);
  const task = r.json<{ status: string; steps: { stepId: string; agent: string; status: string; output: unknown }[] }>();
  assert.equal(task.status, "SUCCESS");
  assert.ok(task.steps.length >= 3);
  const agents = (await cli(["agents", "--root", root, "--json"])).json<{ agents: { id: string; kind: string }[] }>();
  assert.ok(agents.agents.filter((a) => a.kind === "script").length >= 3);
});

test("script agents: after kill -9 of the worker mid-step, the retried step resumes from its last checkpoint", async (t) => {
  const { root, cleanup } = tempRoot();
  t.after(cleanup);
  scriptsRoot(root, [counter]);
  const log = join(root, "counter.log");
  const mesh = await reader(root);
  t.after(() => mesh.close());
  const { taskId } = await mesh.submit({ agent: "counter", input: { to: 30, ms: 40, log } });
  const first = spawnCli(["worker", "--root", root, "--node-id", "first"]);
  await waitUntil(async () => ((await mesh.kv(taskId).get<{ i: number }>("counter"))?.i ?? 0) >= 5, "5 checkpoints");
  first.child.kill("SIGKILL");
  await first.exited;
  const checkpointed = (await mesh.kv(taskId).get<{ i: number }>("counter"))!.i;

  const second = spawnCli(["worker", "--root", root, "--node-id", "second"]);
  t.after(() => { second.child.kill("SIGKILL"); });
  const done = await mesh.waitFor(taskId, { timeoutMs: 30_000 });
  assert.equal(done.status, "SUCCESS");
  const output = done.steps[0]!.output as { resumedFrom: number; to: number };
  assert.ok(output.resumedFrom >= checkpointed, `resumed from ${output.resumedFrom}, last checkpoint seen ${checkpointed}`);
  assert.ok(output.resumedFrom > 0, "did not start from zero");
  assert.equal(done.steps[0]!.attempt, 2);
  const starts = readFileSync(log, "utf8").split("\n").filter((l) => l.startsWith("start "));
  assert.equal(starts.length, 2);
  assert.equal(Number(starts[1]!.split(" ")[1]), output.resumedFrom);
  assert.deepEqual(await mesh.kv(taskId).get("counter"), { i: 30, pid: (done.steps[0]!.output as { pid: number }).pid });
  second.child.kill("SIGTERM");
  await second.exited;
});

test("script agents: a SIGSTOPped worker's late checkpoint is refused after the step was reclaimed", async (t) => {
  const { root, cleanup } = tempRoot();
  t.after(cleanup);
  scriptsRoot(root, [counter]);
  const log = join(root, "counter.log");
  const mesh = await reader(root);
  t.after(() => mesh.close());
  const { taskId } = await mesh.submit({ agent: "counter", input: { to: 40, ms: 50, log } });
  const zombie = spawnCli(["worker", "--root", root, "--node-id", "zombie"]);
  t.after(() => { zombie.child.kill("SIGCONT"); zombie.child.kill("SIGKILL"); });
  await waitUntil(async () => ((await mesh.kv(taskId).get<{ i: number }>("counter"))?.i ?? 0) >= 2, "the zombie's first checkpoints");
  zombie.child.kill("SIGSTOP");
  // Its script runs on and fills the control pipe with checkpoints the stopped worker cannot read.
  const winner = spawnCli(["worker", "--root", root, "--node-id", "winner"]);
  t.after(() => { winner.child.kill("SIGKILL"); });
  const done = await mesh.waitFor(taskId, { timeoutMs: 30_000 });
  assert.equal(done.status, "SUCCESS");
  assert.equal(done.steps[0]!.leaseOwner, "winner");
  const winnerPid = (done.steps[0]!.output as { pid: number }).pid;
  assert.deepEqual(await mesh.kv(taskId).get("counter"), { i: 40, pid: winnerPid });

  zombie.child.kill("SIGCONT");
  const refused = async () => (await mesh.leaseConflicts()).some((c) => c.nodeId === "zombie" && c.taskId === taskId);
  if (TEST_STORE === "sqlite") {
    await waitUntil(refused, "the zombie's writes to be refused");
  } else {
    // On PostgreSQL the stopped worker's session may have been ended by the server meanwhile
    // (idle_in_transaction_session_timeout): its late checkpoint then fails to reach the store
    // instead of being refused there. Either way it must not land (asserted below).
    await waitUntil(refused, "the zombie's writes to be refused", 10_000).catch(() => undefined);
  }
  zombie.child.kill("SIGTERM");
  await zombie.exited;
  assert.deepEqual(await mesh.kv(taskId).get("counter"), { i: 40, pid: winnerPid }, "the zombie never overwrote the winner's checkpoint");
  const after = await mesh.getTask(taskId);
  assert.equal(after.steps[0]!.leaseOwner, "winner");
  assert.deepEqual(after.steps[0]!.output, done.steps[0]!.output);
});

test("script agents: concurrency 1 never lets two attempts of the agent overlap", async (t) => {
  const { root, cleanup } = tempRoot();
  t.after(cleanup);
  scriptsRoot(root, [{ id: "window", command: ["node", join(REPO, "test/fixtures/process/window.mjs")], timeoutMs: 30_000, concurrency: 1 }]);
  const log = join(root, "windows.log");
  const mesh = await reader(root);
  t.after(() => mesh.close());
  for (let i = 0; i < 5; i++) await mesh.submit({ agent: "window", input: { ms: 150, log } });
  await mesh.submit({ agent: "echo", input: "not capped" });
  const r = await cli(["worker", "--once", "--root", root, "--concurrency", "8", "--json"], { timeoutMs: 60_000 });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.json().succeeded, 6);
  const windows = readFileSync(log, "utf8").trim().split("\n").map((l) => l.split(" ").map(Number) as [number, number]).sort((a, b) => a[0] - b[0]);
  assert.equal(windows.length, 5);
  for (let i = 1; i < windows.length; i++) {
    assert.ok(windows[i]![0] >= windows[i - 1]![1], `attempt ${i} started at ${windows[i]![0]} before the previous ended at ${windows[i - 1]![1]}`);
  }
});

test("retry policies: step retry > agent policy > settings, and unknown agents in the file are reported", async (t) => {
  const { root, cleanup } = tempRoot();
  t.after(cleanup);
  writeSettings(root, { maxAttempts: 4, baseBackoffMs: 10, maxBackoffMs: 20 });
  mkdirSync(join(root, "agents"), { recursive: true });
  const policies = join(root, "agents", "retry-policies.json");
  writeFileSync(policies, JSON.stringify({ agents: [{ id: "fail", maxAttempts: 2, baseBackoffMs: 5, maxBackoffMs: 10 }] }));
  const flow = join(root, "flow.json");
  writeFileSync(flow, JSON.stringify({ steps: [
    { id: "by-policy", agent: "fail" },
    { id: "by-step", agent: "fail", retry: { maxAttempts: 1 } },
    { id: "by-settings", agent: "sleep", input: { ms: 1 } },
  ] }));
  const r = await cli(["run", flow, "--root", root, "--json"], { timeoutMs: 60_000 });
  assert.equal(r.code, 1);
  const steps = Object.fromEntries(r.json<{ steps: { stepId: string; attempt: number; maxAttempts: number }[] }>().steps.map((s) => [s.stepId, s]));
  assert.equal(steps["by-policy"]!.maxAttempts, 2);
  assert.equal(steps["by-policy"]!.attempt, 2);
  assert.equal(steps["by-step"]!.maxAttempts, 1);
  assert.equal(steps["by-step"]!.attempt, 1);
  assert.equal(steps["by-settings"]!.maxAttempts, 4);

  writeFileSync(policies, JSON.stringify({ agents: [{ id: "no-such-agent", maxAttempts: 2 }] }));
  const bad = await cli(["submit", "--agent", "echo", "--root", root]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /retry-policies\.json.*unknown agent "no-such-agent"/);
});
