import { test } from "node:test";
import assert from "node:assert/strict";
import { Piscina } from "piscina";
import { AgentPool } from "../../src/pool/pool.js";
import { ErrorCode, RelayMesh } from "../../src/index.js";
import { tempRoot, withDeadline } from "../helpers.js";

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
