import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { cli, spawnCli, tempRoot, waitUntil, writeSettings, REPO, type Spawned } from "../helpers.js";
import { pgSchemaUrl, skipPg } from "../store/pg.js";

/** A machine's root folder whose only module agent is `agent` (test/fixtures/process/named.mjs). */
function machine(agent: string, settings: Record<string, unknown> = {}): { root: string; cleanup: () => void } {
  const m = tempRoot();
  writeSettings(m.root, { leaseTimeoutMs: 2_000, suspectAfterMs: 1_000, deadAfterMs: 3_000, ...settings });
  mkdirSync(join(m.root, "agents"), { recursive: true });
  writeFileSync(join(m.root, "agents", "modules.json"), JSON.stringify({
    agents: [{ id: agent, module: join(REPO, "test/fixtures/process/named.mjs"), export: agent }],
  }));
  return m;
}

function worker(root: string, store: string, nodeId: string): Spawned {
  return spawnCli(["worker", "--root", root, "--store", store, "--node-id", nodeId], { env: { RELAYMESH_TEST_NODE: nodeId } });
}

test("heterogeneous nodes on one PostgreSQL: each step runs on a node that has its agent; a missing agent waits READY and is reported; unknown agents are refused", { skip: skipPg }, async (t) => {
  const pg = pgSchemaUrl();
  t.after(() => pg.drop());
  const A = machine("a");
  const B = machine("b");
  t.after(A.cleanup);
  t.after(B.cleanup);
  const on = (args: string[]) => cli([...args, "--root", A.root, "--store", pg.url, "--json"]);
  const flow = join(A.root, "flow.json");
  writeFileSync(flow, JSON.stringify({ steps: [
    { id: "a1", agent: "a", input: 1 },
    { id: "b1", agent: "b", dependsOn: ["a1"] },
    { id: "a2", agent: "a", dependsOn: ["b1"] },
  ] }));

  const wa = worker(A.root, pg.url, "node-a");
  t.after(() => { wa.child.kill("SIGKILL"); });
  await waitUntil(async () => (await on(["members"])).json<{ members: { nodeId: string; agents: string[] | null }[] }>()
    .members.some((m) => m.nodeId === "node-a" && m.agents?.includes("a")), "node-a to advertise its agents");
  const refused = await on(["submit-workflow", "--file", flow]);
  assert.equal(refused.code, 2, "no node has b yet");
  assert.match(refused.stderr, /unknown agent "b"/);

  let wb = worker(B.root, pg.url, "node-b");
  t.after(() => { wb.child.kill("SIGKILL"); });
  await waitUntil(async () => (await on(["members"])).json<{ members: { nodeId: string }[] }>().members.some((m) => m.nodeId === "node-b"), "node-b to join");
  const submitted = await on(["submit-workflow", "--file", flow]);
  assert.equal(submitted.code, 0, submitted.stderr);
  const { taskId } = submitted.json<{ taskId: string }>();
  const done = await waitUntil(async () => {
    const task = (await on(["task", taskId])).json<{ status: string; steps: { stepId: string; output: { node: string; agent: string } }[] }>();
    return task.status === "SUCCESS" ? task : null;
  }, "a→b→a to finish", 60_000);
  assert.deepEqual(done.steps.map((s) => [s.stepId, s.output.agent, s.output.node]), [["a1", "a", "node-a"], ["b1", "b", "node-b"], ["a2", "a", "node-a"]]);
  const agents = (await on(["agents"])).json<{ agents: { id: string; kind: string; nodes: string[] }[] }>().agents;
  assert.deepEqual(agents.find((x) => x.id === "a"), { id: "a", kind: "module", nodes: ["node-a"] });
  assert.deepEqual(agents.find((x) => x.id === "b"), { id: "b", kind: "remote", nodes: ["node-b"] });
  assert.deepEqual(agents.find((x) => x.id === "echo")!.nodes, ["node-a", "node-b"]);

  // B leaves: its step waits READY and is reported; B back: it finishes.
  wb.child.kill("SIGTERM");
  assert.equal((await wb.exited).code, 0);
  const second = (await on(["submit-workflow", "--file", flow])).json<{ taskId: string }>().taskId;
  await waitUntil(async () => (await on(["task", second])).json<{ steps: { status: string }[] }>().steps[1]!.status === "READY", "b1 to wait READY");
  const summary = await waitUntil(async () => {
    const s = (await on(["mesh-summary"])).json<{ unservable: { agent: string; readySteps: number; waitingMs: number }[] }>();
    return s.unservable.length > 0 ? s : null;
  }, "mesh-summary to report the b step");
  assert.deepEqual(summary.unservable.map((u) => [u.agent, u.readySteps]), [["b", 1]]);
  assert.deepEqual((await on(["stats"])).json<{ unservable: { agent: string }[] }>().unservable.map((u) => u.agent), ["b"]);
  assert.equal((await on(["task", second])).json<{ status: string }>().status, "RUNNING");
  wb = worker(B.root, pg.url, "node-b");
  await waitUntil(async () => (await on(["task", second])).json<{ status: string }>().status === "SUCCESS", "the b step to run once B is back", 60_000);
  assert.deepEqual((await on(["mesh-summary"])).json<{ unservable: unknown[] }>().unservable, []);

  const unknown = await on(["submit", "--agent", "zzz"]);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /unknown agent "zzz"/);
  wa.child.kill("SIGTERM");
  wb.child.kill("SIGTERM");
  await Promise.all([wa.exited, wb.exited]);
});
