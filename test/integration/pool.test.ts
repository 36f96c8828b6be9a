import { test } from "node:test";
import assert from "node:assert/strict";
import { Piscina } from "piscina";
import { join } from "node:path";
import { AGENT_WORKER_FILE, AgentPool } from "../../src/pool/pool.js";
import type { AgentRef, StepResultMessage, StepRun } from "../../src/pool/protocol.js";
import { ErrorCode, RelayMesh } from "../../src/index.js";
import { REPO, tempRoot, withDeadline } from "../helpers.js";

const WAIT_MS = 15_000;

test("AgentPool.warmUp: every thread of the pool answers before it resolves", async (t) => {
  const pool = new AgentPool({ threads: 2, concurrency: 4, onAgentMessage: () => {} });
  t.after(() => pool.close());
  assert.equal(await withDeadline(pool.warmUp(), WAIT_MS, "warm-up"), 2);
});

test("RelayMesh.open: a pool whose threads cannot start is rejected with RELAYMESH_ERR_AGENT_FAILED and nothing keeps running", async (t) => {
  const { root, cleanup } = tempRoot("relaymesh-pool-");
  const piscina = new Piscina({ filename: new URL("./no-such-agent-worker.js", import.meta.url).href, minThreads: 1, maxThreads: 1 });
  // The pool's owner hears of threads failing to start outside any task (Piscina's "error" event).
  const poolErrors: Error[] = [];
  piscina.on("error", (e: Error) => poolErrors.push(e));
  t.after(async () => { await piscina.close({ force: true }); cleanup(); });
  await assert.rejects(
    withDeadline(RelayMesh.open({ root, piscina, concurrency: 2 }), WAIT_MS, "open"),
    (e: { code?: string; message: string }) => e.code === ErrorCode.AGENT_FAILED && /agent threads did not start/.test(e.message),
  );
  // The failed open closed its store: a second engine opens the same root and submits.
  const mesh = await RelayMesh.open({ root, work: false });
  t.after(() => mesh.close());
  assert.equal((await mesh.submit({ agent: "echo", input: 1 })).created, true);
  for (const e of poolErrors) assert.equal((e as { code?: string }).code, "ERR_MODULE_NOT_FOUND");
});

test("AgentPool.run: attempts that cannot block their thread go in one message; module agents are spread over the threads", async (t) => {
  // Two threads, 8 slots. The pool's messages are counted on the Piscina it is given.
  const piscina = new Piscina({ filename: AGENT_WORKER_FILE, minThreads: 2, maxThreads: 2, concurrentTasksPerWorker: 4, atomics: "disabled" });
  const pool = new AgentPool({ threads: 2, concurrency: 8, piscina, onAgentMessage: () => {} });
  t.after(async () => { await pool.close(); await piscina.close({ force: true }); });
  let messages = 0;
  const run = piscina.run.bind(piscina);
  piscina.run = ((task: unknown, options?: unknown) => {
    if ((task as { type: string }).type === "run-batch") messages++;
    return run(task, options as never);
  }) as typeof piscina.run;
  let seq = 0;
  const attempts = (agent: AgentRef, n: number): StepRun[] => Array.from({ length: n }, (_, i) => ({
    key: `${++seq}:1`, taskId: `t${seq}`, stepId: "s", attempt: 1, agent, payloadJson: JSON.stringify({ input: { bytes: i + 1 }, deps: {}, kv: {} }),
    timeoutMs: null, traceparent: `00-${"1".repeat(32)}-${"2".repeat(16)}-01`, maxPayloadBytes: 1_000_000, priority: 1, killGraceMs: 1_000,
  }));
  const runAll = (steps: StepRun[]) => withDeadline(new Promise<StepResultMessage[]>((resolve) => {
    const results: StepResultMessage[] = [];
    pool.run(steps, steps.map((_, i) => i), (i, result) => { results[i] = result; if (results.filter(Boolean).length === steps.length) resolve(results); });
  }), WAIT_MS, "attempts");

  const echoed = await runAll(attempts({ kind: "builtin", name: "echo" }, 8));
  assert.deepEqual(echoed.map((r) => r.type === "result" && JSON.parse(r.outputJson)), Array.from({ length: 8 }, (_, i) => ({ bytes: i + 1 })));
  assert.equal(messages, 1, "8 built-in attempts in one message");
  messages = 0;
  await runAll(attempts({ kind: "builtin", name: "echo" }, 3));
  assert.equal(messages, 1, "3 built-in attempts in one message");
  messages = 0;
  const big = await runAll(attempts({ kind: "module", module: join(REPO, "test/fixtures/agents/output.mjs"), exportName: "big" }, 3));
  assert.deepEqual(big.map((r) => r.type === "result" && JSON.parse(r.outputJson)), ["x", "xx", "xxx"]);
  assert.equal(messages, 2, "3 module attempts over both threads");
});
