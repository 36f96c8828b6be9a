import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { cli, spawnCli, tempRoot, waitUntil } from "../helpers.js";
import { pgSchemaUrl, skipPg } from "../store/pg.js";
import { prepareRoot } from "./setup.js";

interface Record_ { timestamp: string; action: string; actor: string; task_id: string | null; node_id?: string; details: Record<string, unknown> }

test("cluster-wide audit on PostgreSQL: two workers with their own roots write audit records; audit-query and audit-tail from either root answer with both nodes' records, in time order, with node ids", { skip: skipPg }, async (t) => {
  const pg = pgSchemaUrl();
  t.after(() => pg.drop());
  const nodes = ["audit-a", "audit-b"].map((nodeId) => {
    const r = tempRoot();
    t.after(r.cleanup);
    prepareRoot(r.root, { suspectAfterMs: 600, deadAfterMs: 1_500 });
    return { nodeId, root: r.root };
  });
  const workers = nodes.map(({ nodeId, root }) => {
    const w = spawnCli(["worker", "--root", root, "--store", pg.url, "--node-id", nodeId, "--concurrency", "2"]);
    t.after(() => { w.child.kill("SIGKILL"); });
    return w;
  });
  const store = ["--store", pg.url];
  // Files dropped into each root's inbox are submitted by that root's worker: audited (task.submit) under its node id.
  const expected = new Map<string, string>();
  for (let i = 0; i < 3; i++) {
    for (const { nodeId, root } of nodes) {
      mkdirSync(join(root, "inbox", "normal"), { recursive: true });
      const name = `${nodeId}-${i}`;
      writeFileSync(join(root, "inbox", "normal", `${name}.json`), JSON.stringify({ name, steps: [{ id: "s", agent: "record", input: { ms: 10, name } }] }));
      expected.set(name, nodeId);
    }
  }
  await waitUntil(async () => {
    const s = (await cli(["stats", "--root", nodes[0]!.root, ...store, "--json"])).json<{ tasks: Record<string, number> }>();
    return (s.tasks.SUCCESS ?? 0) === expected.size;
  }, "every dropped file's task SUCCESS", 60_000, 200);
  // The workers record their own view (membership changes) into the same store: stop them gracefully, which flushes their buffers.
  for (const w of workers) w.child.kill("SIGTERM");
  for (const w of workers) assert.equal((await w.exited).code, 0);

  const answers = await Promise.all(nodes.map(async ({ root }) =>
    (await cli(["audit-query", "--root", root, ...store, "--limit", "1000", "--json"])).json<{ records: Record_[] }>().records));
  assert.deepEqual(answers[0], answers[1], "either root answers with the same cluster-wide records");
  const records = answers[0]!;
  const submits = records.filter((r) => r.action === "task.submit");
  assert.deepEqual(new Map(submits.map((r) => [r.details.name as string, r.node_id])), expected, "one submit record per dropped file, with the node that wrote it");
  assert.ok(records.every((r) => typeof r.node_id === "string" && r.node_id.length > 0), "every record carries its node id");
  const times = records.map((r) => Date.parse(r.timestamp));
  assert.deepEqual(times, [...times].sort((a, b) => b - a), "newest first");
  assert.deepEqual(new Set(submits.map((r) => r.node_id)), new Set(["audit-a", "audit-b"]));
  // The workers' own records (membership verdicts on each other) are there too, with their node ids.
  const membershipNodes = new Set(records.filter((r) => r.action === "node.membership").map((r) => r.node_id));
  assert.ok([...membershipNodes].every((n) => n === "audit-a" || n === "audit-b"), JSON.stringify([...membershipNodes]));

  const tail = (await cli(["audit-tail", "--root", nodes[1]!.root, ...store, "--lines", "4", "--json"])).json<{ records: Record_[] }>().records;
  assert.deepEqual(tail, records.slice(0, 4).reverse(), "audit-tail: the last records, oldest first, of every node");
  const first = submits.find((r) => r.node_id === "audit-a")!;
  const forTask = (await cli(["audit-query", "--root", nodes[1]!.root, ...store, "--task-id", first.task_id!, "--json"])).json<{ records: Record_[] }>().records;
  assert.deepEqual(forTask.map((r) => [r.action, r.node_id]), [["task.submit", "audit-a"]], "--task-id from the other node's root finds it");
  // On PostgreSQL the records go to the store, not to the roots' files.
  for (const { root } of nodes) {
    const file = join(root, "audit", "audit.log");
    assert.ok(!existsSync(file) || readFileSync(file, "utf8").trim() === "", "the root's JSONL file holds no records");
  }
});
