import { test } from "node:test";
import assert from "node:assert/strict";
import { Supervisor } from "../../src/supervisor/supervisor.js";
import { AgentRegistry } from "../../src/agents/registry.js";
import { DEFAULT_SETTINGS } from "../../src/model/settings.js";
import type { AgentPool } from "../../src/pool/pool.js";
import type { StepResultMessage } from "../../src/pool/protocol.js";
import type { Store } from "../../src/store/store.js";
import type { ClaimedStep, CommitBatch, CommitResult, NewTask } from "../../src/store/types.js";

/** A store whose commits wait until the test answers them, in the order they were made. */
function fakeStore(pipelining: Store["pipelining"]) {
  const commits: { batch: CommitBatch; answer: (r: Partial<CommitResult>) => void }[] = [];
  const store = {
    location: "fake:", shared: false, pipelining, now: () => 1_000,
    commit: (batch: CommitBatch) => new Promise<CommitResult>((resolve) => {
      commits.push({ batch, answer: (r) => resolve({ ...emptyResult(), ...r }) });
    }),
  } as unknown as Store;
  return { store, commits };
}

function emptyResult(): CommitResult {
  return {
    submitted: [], refused: [], outcomes: [], cancelledRunning: [], reclaimed: 0, released: 0, kvResults: [], claimed: [],
    claimBacklog: [false, false, false], finishedTasks: [], nextRetryAtMs: null,
  };
}

/** A pool that runs nothing: the test settles each attempt handed to it. */
function fakePool() {
  const runs: { settle: (result: StepResultMessage) => void }[] = [];
  const pool = {
    run: <T>(_steps: unknown[], tokens: T[], settle: (token: T, result: StepResultMessage) => void) => {
      tokens.forEach((token) => runs.push({ settle: (result) => settle(token, result) }));
    },
    abort: () => {},
  } as unknown as AgentPool;
  return { pool, runs };
}

const claimed = (n: number): ClaimedStep => ({
  stepKey: String(n), taskId: `t${n}`, stepId: "s", leaseEpoch: 1, agent: "echo", payloadJson: `{"input":null,"deps":{},"kv":{}}`,
  attempt: 1, maxAttempts: 3, deadlineAtMs: null, baseBackoffMs: 100, maxBackoffMs: 1_000, timeoutMs: null, priority: 1,
  traceId: "0".repeat(32), leaseExpiresAtMs: 31_000, dependents: 0,
});

const newTask = (taskId: string): NewTask => ({
  taskId, name: null, priority: 1, idempotencyKey: null, failFast: false, traceId: "1".repeat(32), parentSpanId: null,
  steps: [{ stepId: "a", agent: "echo", inputJson: "null", priority: 1, dependsOn: [], maxAttempts: 3, baseBackoffMs: 100, maxBackoffMs: 1_000, timeoutMs: null }],
});

async function until<T>(check: () => T | undefined, what: string): Promise<T> {
  const deadline = Date.now() + 5_000;
  for (;;) {
    const v = check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setImmediate(r));
  }
}

/** A supervisor holding one running step, with its result and a submission arriving in the same turn. */
async function resultBesideSubmission(pipelining: Store["pipelining"]) {
  const { store, commits } = fakeStore(pipelining);
  const { pool, runs } = fakePool();
  const sup = new Supervisor({
    store, pool, agents: new AgentRegistry([], process.cwd()), nodeId: "n", concurrency: 2, prefetch: 0, settings: DEFAULT_SETTINGS,
    pollIntervalMs: 60_000, emit: () => {},
  });
  sup.startWorking();
  const first = await until(() => commits[0], "the first claim");
  first.answer({ claimed: [claimed(1)] });
  const run = await until(() => runs[0], "the step to run");
  run.settle({ type: "result", outputJson: "1" });
  const submitted = sup.submit(newTask("new"));
  const stop = () => { sup.stopClaiming(); sup.stopHeartbeats(); };
  return { commits, submitted, stop };
}

for (const pipelining of ["ordered", "concurrent"] as const) {
  test(`supervisor, ${pipelining} commits: a submission beside results commits first, on its own, and is acknowledged before the group commit returns`, async () => {
    const { commits, submitted, stop } = await resultBesideSubmission(pipelining);
    try {
      const [ahead, group] = await until(() => (commits.length >= 3 ? [commits[1]!, commits[2]!] : undefined), "two commits in flight");
      assert.deepEqual([ahead.batch.submissions.map((t) => t.taskId), ahead.batch.completions.length, ahead.batch.claim], [["new"], 0, null]);
      assert.deepEqual([group.batch.submissions.length, group.batch.completions.map((c) => c.stepKey)], [0, ["1"]]);
      ahead.answer({ submitted: [{ taskId: "new", created: true, steps: 1 }] });
      assert.deepEqual(await submitted, { taskId: "new", created: true, steps: 1 }, "acknowledged while the group commit is still in flight");
      group.answer({});
      if (pipelining === "concurrent") {
        // The group ran beside the submission's commit: its claim may have missed the new steps.
        const again = await until(() => commits[3], "a claim after both");
        assert.ok(again.batch.claim && again.batch.claim.limit > 0);
        again.answer({});
      }
    } finally {
      stop();
    }
  });
}

test("supervisor, store that commits during the call: a submission beside results rides in the group commit", async () => {
  const { commits, submitted, stop } = await resultBesideSubmission(undefined);
  try {
    const group = await until(() => commits[1], "the group commit");
    assert.deepEqual([group.batch.submissions.map((t) => t.taskId), group.batch.completions.map((c) => c.stepKey)], [["new"], ["1"]]);
    group.answer({ submitted: [{ taskId: "new", created: true, steps: 1 }] });
    assert.equal((await submitted).taskId, "new");
    assert.equal(commits.length, 2, "one commit for both");
  } finally {
    stop();
  }
});
