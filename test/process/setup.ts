import assert from "node:assert/strict";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { TestContext } from "node:test";
import { RelayMesh } from "../../src/index.js";
import { REPO, spawnCli, storeFor, tempRoot, waitUntil, writeSettings } from "../helpers.js";

/** A root whose agents/modules.json registers the `record` test agent. */
export function prepareRoot(root: string, settings: Record<string, unknown> = {}): void {
  writeSettings(root, { leaseTimeoutMs: 1_000, baseBackoffMs: 50, maxBackoffMs: 200, ...settings });
  mkdirSync(join(root, "agents"), { recursive: true });
  writeFileSync(join(root, "agents", "modules.json"), JSON.stringify({
    agents: [
      { id: "record", module: join(REPO, "test/fixtures/process/record.mjs"), export: "record" },
      { id: "flaky", module: join(REPO, "test/fixtures/process/flaky.mjs"), export: "flaky" },
      { id: "timed", module: join(REPO, "test/fixtures/process/timed.mjs"), export: "timed" },
    ],
  }));
}

/** An engine that only submits and reads, on the same root as the worker processes. */
export function reader(root: string): Promise<RelayMesh> {
  const store = storeFor(root);
  return RelayMesh.open({ root, work: false, ...(store ? { store } : {}) });
}

/** Counts tasks per status. */
export async function statusCounts(mesh: RelayMesh): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const status of ["PENDING", "RUNNING", "SUCCESS", "DEAD_LETTER", "CANCELLED"] as const) {
    out[status] = (await mesh.listTasks({ status, limit: 1 })).total;
  }
  return out;
}

/**
 * Submits `tasks` one-step tasks of the `record` agent (16 submitters), runs one worker process
 * per node id (concurrency 8) until every task is SUCCESS, stops them (SIGTERM, exit 0) and
 * checks that every step ran once (the agent's log) and was claimed and succeeded once (one
 * attempt, epoch 1, no lease conflict). Returns the workers' JSON reports.
 */
export async function drainWithWorkers(t: TestContext, nodeIds: string[], tasks: number, timeoutMs: number): Promise<{ nodeId: string; succeeded: number; failed: number }[]> {
  const { root, cleanup } = tempRoot();
  t.after(cleanup);
  prepareRoot(root, { leaseTimeoutMs: 30_000 });
  const log = join(root, "executions.log");
  const mesh = await reader(root);
  t.after(() => mesh.close());
  await Promise.all(Array.from({ length: 16 }, async (_, lane) => {
    for (let i = lane; i < tasks; i += 16) await mesh.submit({ agent: "record", input: { n: i } });
  }));

  const workers = nodeIds.map((id) => spawnCli(["worker", "--root", root, "--node-id", id, "--concurrency", "8", "--json"], { env: { RELAYMESH_TEST_LOG: log } }));
  t.after(() => { for (const w of workers) w.child.kill("SIGKILL"); });
  await waitUntil(async () => (await statusCounts(mesh)).SUCCESS === tasks, `${tasks} tasks SUCCESS`, timeoutMs, 250);
  for (const w of workers) w.child.kill("SIGTERM");
  const exits = await Promise.all(workers.map((w) => w.exited));
  assert.deepEqual(exits.map((e) => e.code), nodeIds.map(() => 0));

  const reports = workers.map((w) => JSON.parse(w.stdout()) as { nodeId: string; succeeded: number; failed: number });
  assert.equal(reports.reduce((n, r) => n + r.succeeded, 0), tasks, JSON.stringify(reports));
  assert.ok(reports.every((r) => r.failed === 0), JSON.stringify(reports));
  const lines = readFileSync(log, "utf8").trim().split("\n");
  assert.equal(lines.length, tasks, "every step ran exactly once");
  assert.equal(new Set(lines.map((l) => l.split(" ")[0])).size, tasks);
  const steps: Record<string, unknown>[] = [];
  await mesh.store.exportRows((page) => { steps.push(...page.rows); }, { tables: ["steps"] });
  assert.equal(steps.length, tasks);
  assert.ok(steps.every((s) => s.status === "SUCCESS" && s.attempt === 1 && s.lease_epoch === 1), "one claim and one success per step");
  assert.equal((await mesh.store.listLeaseConflicts({ sinceMs: 0, limit: 10 })).length, 0);
  return reports;
}
