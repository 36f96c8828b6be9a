import { test } from "node:test";
import assert from "node:assert/strict";
import { cli, spawnCli, tempRoot, waitUntil } from "../helpers.js";
import { prepareRoot, reader } from "./setup.js";

test("worker: a SIGSTOPped worker past its lease is fenced when resumed", async (t) => {
  const { root, cleanup } = tempRoot();
  t.after(cleanup);
  prepareRoot(root, { leaseTimeoutMs: 1_000 });
  const mesh = await reader(root);
  t.after(() => mesh.close());
  const { taskId } = await mesh.submit({ agent: "record", input: { ms: 1_500 } });

  const zombie = spawnCli(["worker", "--root", root, "--node-id", "zombie"]);
  t.after(() => { zombie.child.kill("SIGCONT"); zombie.child.kill("SIGKILL"); });
  const claimed = await waitUntil(async () => {
    const step = (await mesh.getTask(taskId)).steps[0]!;
    return step.status === "RUNNING" && step.leaseOwner === "zombie" ? step : null;
  }, "the zombie to claim the step");
  zombie.child.kill("SIGSTOP");

  const winner = spawnCli(["worker", "--root", root, "--node-id", "winner"]);
  t.after(() => { winner.child.kill("SIGKILL"); });
  const done = await mesh.waitFor(taskId, { timeoutMs: 30_000 });
  assert.equal(done.status, "SUCCESS");
  const step = done.steps[0]!;
  assert.equal(step.leaseOwner, "winner");
  assert.ok(step.leaseEpoch > claimed.leaseEpoch, `epoch moved on: ${claimed.leaseEpoch} -> ${step.leaseEpoch}`);
  const winnerOutput = step.output as { pid: number };
  assert.equal(winnerOutput.pid, winner.child.pid);

  zombie.child.kill("SIGCONT");
  const conflicts = await waitUntil(async () => {
    const list = await mesh.leaseConflicts();
    return list.some((c) => c.nodeId === "zombie") ? list : null;
  }, "the zombie's late write to be refused and recorded");
  const conflict = conflicts.find((c) => c.nodeId === "zombie")!;
  assert.equal(conflict.taskId, taskId);
  assert.equal(conflict.expectedLeaseEpoch, claimed.leaseEpoch);
  assert.ok(conflict.actualLeaseEpoch! > claimed.leaseEpoch);

  const after = (await mesh.getTask(taskId)).steps[0]!;
  assert.deepEqual(after.output, winnerOutput, "the winner's output is kept");
  assert.equal(after.leaseOwner, "winner");
  assert.equal(after.status, "SUCCESS");

  const audit = (await cli(["audit-query", "--action", "lease.conflict", "--task-id", taskId, "--root", root, "--json"])).json<{ records: any[] }>().records;
  assert.ok(audit.length >= 1, "the refused write is audited");
  assert.equal(audit[0].trace_id, done.traceId);
  assert.match(audit[0].span_id, /^[0-9a-f]{16}$/);

  const listed = (await cli(["lease-conflicts", "--root", root, "--json"])).json<{ conflicts: { nodeId: string; expectedLeaseEpoch: number; actualLeaseEpoch: number; taskId: string; stepId: string; atMs: number }[] }>();
  assert.ok(listed.conflicts.some((c) => c.nodeId === "zombie" && c.taskId === taskId && c.stepId === "main"));
});
