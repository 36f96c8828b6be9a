import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { randomUUID } from "node:crypto";
import { RelayMesh } from "../../src/index.js";
import { ErrorCode } from "../../src/errors.js";
import { UNRESPONSIVE_GRACE_MS } from "../../src/pool/pool.js";
import { REPO, cli, tempRoot, waitUntil } from "../helpers.js";

const AGENTS = join(REPO, "test/fixtures/poison/agents.mjs");
const SCRIPTS = join(REPO, "test/fixtures/poison/scripts.sh");
const TIMEOUT_MS = 1_500;
/** The script runner's grace between SIGTERM and SIGKILL (supervisor's SCRIPT_KILL_GRACE_MS). */
const KILL_GRACE_MS = 2_000;
/** Slack for a loaded 2-core machine on top of what the engine promises. */
const SLACK_MS = 2_500;
/** How long a thread blocked by a poisoned module agent can hold up the attempts queued on it. */
const BLOCKED_THREAD_MS = TIMEOUT_MS + UNRESPONSIVE_GRACE_MS;

const MODULES = ["busy", "block", "throwNumber", "throwBigInt", "throwCycle", "returnBigInt", "returnCycle", "thenable"];
const SCRIPT_KINDS = ["ignore-term", "holds-stdout", "flood-stderr"];

/** Processes whose command line carries `tag` (the scripts and anything they started). */
function processesTagged(tag: string): string[] {
  try {
    return execFileSync("pgrep", ["-f", tag], { encoding: "utf8" }).split("\n").filter(Boolean);
  } catch {
    return []; // pgrep exits 1 when nothing matches
  }
}

function poisonRoot(root: string, tag: string): void {
  mkdirSync(join(root, "agents"), { recursive: true });
  writeFileSync(join(root, "agents", "modules.json"), JSON.stringify({ agents: MODULES.map((id) => ({ id, module: AGENTS, export: id })) }));
  writeFileSync(join(root, "agents", "scripts.json"), JSON.stringify({
    agents: SCRIPT_KINDS.map((id) => ({ id, command: ["sh", SCRIPTS, id, tag], timeoutMs: TIMEOUT_MS })),
  }));
}

test("poisoned agents: each becomes a recorded failure on time, innocent steps succeed, worker --once exits, nothing is left behind", async (t) => {
  const { root, cleanup } = tempRoot();
  t.after(cleanup);
  const tag = `relaymesh-poison-${randomUUID()}`;
  poisonRoot(root, tag);
  const once = { maxAttempts: 1 };
  const flow = join(root, "flow.json");
  writeFileSync(flow, JSON.stringify({
    steps: [
      ...MODULES.map((id) => ({ id, agent: id, timeoutMs: TIMEOUT_MS, retry: once })),
      ...SCRIPT_KINDS.map((id) => ({ id, agent: id, retry: once })),
      // Innocent steps running at the same time, on the same threads.
      { id: "slow-innocent", agent: "sleep", input: { ms: 2_500 }, timeoutMs: 20_000 },
      { id: "fast-innocent", agent: "echo", input: "fine" },
      { id: "after-busy", agent: "echo", input: 1, dependsOn: ["thenable"] },
    ],
  }));
  assert.equal((await cli(["submit-workflow", "--file", flow, "--root", root])).code, 0);
  const worker = await cli(["worker", "--once", "--concurrency", "16", "--root", root, "--json"], { timeoutMs: 60_000 });
  assert.equal(worker.code, 0, worker.stderr);
  assert.equal(worker.json().executed, MODULES.length + SCRIPT_KINDS.length + 3);

  const { tasks } = (await cli(["tasks", "--root", root, "--json"])).json<{ tasks: { taskId: string }[] }>();
  const task = (await cli(["task", tasks[0]!.taskId, "--root", root, "--json"])).json<{
    steps: { stepId: string; status: string; error: { code?: string; message: string } | null; output: unknown; startedAtMs: number; finishedAtMs: number }[];
  }>();
  const steps = new Map(task.steps.map((s) => [s.stepId, s]));
  for (const id of ["slow-innocent", "fast-innocent", "thenable", "after-busy"]) assert.equal(steps.get(id)!.status, "SUCCESS", id);
  assert.deepEqual(steps.get("thenable")!.output, { via: "thenable" });
  const expect: Record<string, { code: string; message?: RegExp; within: number }> = {
    busy: { code: ErrorCode.STEP_TIMEOUT, within: TIMEOUT_MS + UNRESPONSIVE_GRACE_MS },
    block: { code: ErrorCode.STEP_TIMEOUT, within: TIMEOUT_MS + UNRESPONSIVE_GRACE_MS },
    throwNumber: { code: ErrorCode.AGENT_FAILED, message: /^42$/, within: 0 },
    throwBigInt: { code: ErrorCode.AGENT_FAILED, message: /^10$/, within: 0 },
    throwCycle: { code: ErrorCode.AGENT_FAILED, message: /cycle|object/i, within: 0 },
    returnBigInt: { code: ErrorCode.NON_RETRYABLE, message: /not JSON-serialisable/, within: 0 },
    returnCycle: { code: ErrorCode.NON_RETRYABLE, message: /not JSON-serialisable/, within: 0 },
    "ignore-term": { code: ErrorCode.STEP_TIMEOUT, within: TIMEOUT_MS + KILL_GRACE_MS },
    "holds-stdout": { code: ErrorCode.AGENT_FAILED, within: TIMEOUT_MS + KILL_GRACE_MS },
    "flood-stderr": { code: ErrorCode.STEP_TIMEOUT, within: TIMEOUT_MS + KILL_GRACE_MS },
  };
  for (const [id, e] of Object.entries(expect)) {
    const s = steps.get(id)!;
    assert.equal(s.status, "DEAD_LETTER", `${id}: ${JSON.stringify(s)}`);
    assert.ok(s.error, id);
    if (id !== "holds-stdout") assert.equal(s.error.code ?? ErrorCode.AGENT_FAILED, e.code, `${id}: ${JSON.stringify(s.error)}`);
    if (e.message) assert.match(s.error.message, e.message, id);
    // An attempt may first wait behind another poisoned one on its thread until that thread is ended.
    assert.ok(s.finishedAtMs - s.startedAtMs <= e.within + BLOCKED_THREAD_MS + SLACK_MS, `${id} took ${s.finishedAtMs - s.startedAtMs} ms`);
  }
  // The flood's stderr tail is kept, bounded.
  assert.ok(steps.get("flood-stderr")!.error!.message.length < 16_384);
  await waitUntil(() => processesTagged(tag).length === 0, `no process tagged ${tag} to be left`, 10_000);
});

test("poisoned agents: in an embedded engine a busy loop times out, the thread is replaced, later steps run, close() finishes", async (t) => {
  const { root, cleanup } = tempRoot();
  t.after(cleanup);
  const mesh = await RelayMesh.open({
    root, threads: 1, concurrency: 4, pollIntervalMs: 20,
    agents: [{ id: "busy", module: AGENTS, export: "busy" }], settings: { baseBackoffMs: 10, maxBackoffMs: 20 },
  });
  let closed = false;
  t.after(() => (closed ? undefined : mesh.close({ force: true })));
  const { taskId } = await mesh.submitWorkflow({
    steps: [
      { id: "spin", agent: "busy", timeoutMs: 300, retry: { maxAttempts: 2 } },
      { id: "beside", agent: "sleep", input: { ms: 200 } },
    ],
  });
  const task = await mesh.waitFor(taskId, { timeoutMs: 20_000 });
  const spin = task.steps.find((s) => s.stepId === "spin")!;
  assert.equal(spin.status, "DEAD_LETTER");
  assert.equal(spin.attempt, 2, "retried per policy");
  assert.equal(spin.error?.code, ErrorCode.STEP_TIMEOUT);
  assert.equal(task.steps.find((s) => s.stepId === "beside")!.status, "SUCCESS");
  // The replaced thread serves the next submission.
  const next = await mesh.submit({ agent: "echo", input: "after" });
  assert.equal((await mesh.waitFor(next.taskId, { timeoutMs: 10_000 })).status, "SUCCESS");
  // A busy loop without a timeout is ended by close(): abort, then the grace, then its thread.
  await mesh.submit({ agent: "busy", input: null });
  await waitUntil(async () => (await mesh.listTasks({ status: "RUNNING" })).total === 1, "the busy step to run");
  await mesh.close({ timeoutMs: 0 });
  closed = true;
  assert.equal(mesh.state, "closed");
});
