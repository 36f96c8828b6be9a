import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { RelayMesh, ErrorCode, type EngineEventMap, type EngineEventName, type EngineOptions, type TaskWithSteps } from "../../src/index.js";
import { REPO, TEST_STORE, storeFor, tempRoot, waitUntil, withDeadline } from "../helpers.js";
import { openMesh } from "../../src/cli/context.js";

const FIXTURES = join(REPO, "test/fixtures/agents");
const WAIT_MS = 15_000;
const TRACE = "4bf92f3577b34da6a3ce929d0e0e4736";
const SPAN = "00f067aa0ba902b7";

const BASE_SETTINGS = { leaseTimeoutMs: 1_000, baseBackoffMs: 10, maxBackoffMs: 40, maxAttempts: 3 };

const MODULE_AGENTS = [
  { id: "inspect", module: join(FIXTURES, "context.mjs"), export: "inspect" },
  { id: "upper", module: join(FIXTURES, "context.mjs") },
  { id: "non-retryable", module: join(FIXTURES, "errors.mjs"), export: "nonRetryable" },
  { id: "retry-later", module: join(FIXTURES, "errors.mjs"), export: "retryLater" },
  { id: "flaky", module: join(FIXTURES, "errors.mjs"), export: "flaky" },
  { id: "big", module: join(FIXTURES, "output.mjs"), export: "big" },
  { id: "gate", module: join(FIXTURES, "gate.mjs"), export: "gate" },
  { id: "await-file", module: join(FIXTURES, "gate.mjs"), export: "awaitFile" },
  { id: "check-first", module: join(FIXTURES, "slow-load.mjs"), export: "checkFirst" },
];

interface Env {
  root: string;
  /** Opens an engine on this test's root (closed, forcefully if need be, after the test). */
  open(options?: Partial<EngineOptions>): Promise<RelayMesh>;
}

/** A fresh root for one test; every engine opened on it is closed before the root is removed. */
function env(t: TestContext, settings: Record<string, unknown> = {}): Env {
  const { root, cleanup } = tempRoot("relaymesh-engine-");
  const meshes: RelayMesh[] = [];
  let n = 0;
  t.after(async () => {
    // Bounded: a close that hangs is reported by the test itself, not by blocking the suite here.
    await withDeadline(Promise.all(meshes.map((m) => m.close({ force: true }).catch(() => {}))), 5_000, "engines to close after the test")
      .catch(() => {});
    cleanup();
  });
  return {
    root,
    async open(options = {}) {
      const store = storeFor(root);
      const mesh = await RelayMesh.open({
        root, ...(store ? { store } : {}), threads: 1, concurrency: 4, pollIntervalMs: 20, nodeId: `node-${++n}`, agents: MODULE_AGENTS,
        ...options,
        settings: { ...BASE_SETTINGS, ...settings, ...options.settings },
      });
      meshes.push(mesh);
      return mesh;
    },
  };
}

/** Records the payloads of the given events, in order. */
function record<K extends EngineEventName>(mesh: RelayMesh, names: K[]): { name: K; payload: EngineEventMap[K] }[] {
  const events: { name: K; payload: EngineEventMap[K] }[] = [];
  for (const name of names) mesh.on(name, (payload) => events.push({ name, payload }));
  return events;
}

/** Resolves with the first payload of `event` that matches. */
function next<K extends EngineEventName>(mesh: RelayMesh, event: K, match: (p: EngineEventMap[K]) => boolean = () => true): Promise<EngineEventMap[K]> {
  return withDeadline(new Promise((resolve) => {
    const listener = (p: EngineEventMap[K]) => { if (match(p)) { mesh.off(event, listener); resolve(p); } };
    mesh.on(event, listener);
  }), WAIT_MS, `event ${event}`);
}

function stepOf(task: TaskWithSteps, stepId: string) {
  const s = task.steps.find((x) => x.stepId === stepId);
  assert.ok(s, `step ${stepId}`);
  return s;
}

function statuses(task: TaskWithSteps): Record<string, string> {
  return Object.fromEntries(task.steps.map((s) => [s.stepId, s.status]));
}

test("submitWorkflow: a diamond passes each step its input and its dependencies' outputs", async (t) => {
  const mesh = await env(t).open();
  const { taskId, created, steps } = await mesh.submitWorkflow({
    name: "diamond",
    steps: [
      { id: "A", agent: "collect", input: "a" },
      { id: "B", agent: "collect", input: "b", dependsOn: ["A"] },
      { id: "C", agent: "collect", input: { c: 3 }, dependsOn: ["A"] },
      { id: "D", agent: "collect", input: null, dependsOn: ["B", "C"] },
    ],
  });
  assert.equal(created, true);
  assert.equal(steps, 4);
  const task = await mesh.waitFor(taskId, { timeoutMs: WAIT_MS });
  assert.equal(task.status, "SUCCESS");
  const a = { input: "a", deps: {} };
  const b = { input: "b", deps: { A: a } };
  const c = { input: { c: 3 }, deps: { A: a } };
  assert.deepEqual(stepOf(task, "A").output, a);
  assert.deepEqual(stepOf(task, "B").output, b);
  assert.deepEqual(stepOf(task, "C").output, c);
  assert.deepEqual(stepOf(task, "D").output, { input: null, deps: { B: b, C: c } });
  for (const s of task.steps) assert.equal(s.attempt, 1);
  assert.ok(stepOf(task, "D").startedAtMs! >= stepOf(task, "B").finishedAtMs!);
  assert.ok(stepOf(task, "D").startedAtMs! >= stepOf(task, "C").finishedAtMs!);
});

test("submitWorkflow: a failing step is retried to maxAttempts, then DEAD_LETTER; dependents SKIPPED, an independent branch succeeds", async (t) => {
  const mesh = await env(t).open();
  const failed = record(mesh, ["step:failed"]);
  const finished = record(mesh, ["task:finished"]);
  const { taskId } = await mesh.submitWorkflow({
    steps: [
      { id: "bad", agent: "fail", input: { message: "nope" }, retry: { maxAttempts: 3, baseBackoffMs: 5, maxBackoffMs: 10 } },
      { id: "child", agent: "echo", dependsOn: ["bad"] },
      { id: "grandchild", agent: "echo", dependsOn: ["child"] },
      { id: "free", agent: "echo", input: "free" },
      { id: "free2", agent: "collect", dependsOn: ["free"] },
    ],
  });
  const task = await mesh.waitFor(taskId, { timeoutMs: WAIT_MS });
  assert.equal(task.status, "DEAD_LETTER");
  assert.deepEqual(statuses(task), { bad: "DEAD_LETTER", child: "SKIPPED", grandchild: "SKIPPED", free: "SUCCESS", free2: "SUCCESS" });
  const bad = stepOf(task, "bad");
  assert.equal(bad.maxAttempts, 3);
  assert.equal(bad.attempt, bad.maxAttempts);
  assert.equal(bad.error?.code, ErrorCode.AGENT_FAILED);
  assert.equal(stepOf(task, "child").attempt, 0, "a skipped step never ran");
  assert.deepEqual(stepOf(task, "free2").output, { input: null, deps: { free: "free" } });
  const badFailures = failed.filter((e) => e.payload.stepId === "bad").map((e) => [e.payload.attempt, e.payload.willRetry]);
  assert.deepEqual(badFailures, [[1, true], [2, true], [3, false]]);
  assert.deepEqual(finished.map((e) => e.payload), [{ taskId, status: "DEAD_LETTER" }]);
});

test("submitWorkflow: failFast cancels the rest at the first dead step and aborts the running ones (their AbortSignal fires)", async (t) => {
  const e = env(t);
  const mesh = await e.open();
  const abortedFile = join(e.root, "long-aborted");
  const startedFile = join(e.root, "long-started");
  const started = next(mesh, "step:started", (p) => p.stepId === "long");
  const { taskId } = await mesh.submitWorkflow({
    failFast: true,
    steps: [
      { id: "long", agent: "gate", input: { openFile: join(e.root, "never"), abortedFile, startedFile } },
      { id: "bad", agent: "fail", retry: { maxAttempts: 1 }, dependsOn: ["trigger"] },
      // "bad" dies only once "long" is running inside its agent, so there is a signal to fire.
      { id: "trigger", agent: "await-file", input: { file: startedFile } },
      { id: "after", agent: "echo", dependsOn: ["long"] },
    ],
  });
  await started;
  const task = await mesh.waitFor(taskId, { timeoutMs: WAIT_MS });
  assert.equal(task.status, "DEAD_LETTER");
  assert.deepEqual(statuses(task), { long: "CANCELLED", bad: "DEAD_LETTER", trigger: "SUCCESS", after: "CANCELLED" });
  await waitUntil(() => existsSync(abortedFile), "the cancelled step's AbortSignal to fire inside the agent", 5_000);
  assert.equal(readFileSync(abortedFile, "utf8"), ErrorCode.ABORTED);
});

test("submit: timeoutMs aborts a sleep step with RELAYMESH_ERR_STEP_TIMEOUT, and it is retried per policy", async (t) => {
  const mesh = await env(t).open();
  const failed = record(mesh, ["step:failed"]);
  const { taskId } = await mesh.submit({ agent: "sleep", input: { ms: 30_000 }, timeoutMs: 100, retry: { maxAttempts: 2, baseBackoffMs: 5, maxBackoffMs: 10 } });
  // Two attempts of 30 s each could never finish within this wait: the timeout must abort them.
  const task = await mesh.waitFor(taskId, { timeoutMs: 10_000 });
  assert.equal(task.status, "DEAD_LETTER");
  const step = task.steps[0]!;
  assert.equal(step.attempt, 2);
  assert.equal(step.error?.code, ErrorCode.STEP_TIMEOUT);
  assert.equal(step.error?.code, "RELAYMESH_ERR_STEP_TIMEOUT");
  assert.deepEqual(failed.map((e) => [e.payload.attempt, e.payload.willRetry, e.payload.error.code]), [
    [1, true, ErrorCode.STEP_TIMEOUT],
    [2, false, ErrorCode.STEP_TIMEOUT],
  ]);
});

test("RelayMesh.open agents: a module agent receives {input, deps, signal, attempt, taskId, stepId, traceparent}", async (t) => {
  const mesh = await env(t).open();
  const { taskId } = await mesh.submitWorkflow({
    steps: [
      { id: "first", agent: "upper", input: "shout" },
      { id: "look", agent: "inspect", input: { k: [1, 2] }, dependsOn: ["first"] },
    ],
  }, { traceparent: `00-${TRACE}-${SPAN}-01` });
  const task = await mesh.waitFor(taskId, { timeoutMs: WAIT_MS });
  assert.equal(task.status, "SUCCESS", JSON.stringify(task.steps.map((s) => s.error)));
  assert.equal(stepOf(task, "first").output, "SHOUT", "the default export is used when no export is named");
  const seen = stepOf(task, "look").output as Record<string, unknown>;
  assert.deepEqual(seen.input, { k: [1, 2] });
  assert.deepEqual(seen.deps, { first: "SHOUT" });
  assert.equal(seen.attempt, 1);
  assert.equal(seen.taskId, taskId);
  assert.equal(seen.stepId, "look");
  assert.equal(seen.signalIsAbortSignal, true);
  assert.equal(seen.signalAborted, false);
  for (const key of ["input", "deps", "signal", "attempt", "taskId", "stepId", "traceparent"]) {
    assert.ok((seen.keys as string[]).includes(key), `context has ${key}`);
  }
  const tp = String(seen.traceparent).split("-");
  assert.match(String(seen.traceparent), /^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/);
  assert.equal(tp[1], TRACE, "the submitter's trace is continued");
  assert.notEqual(tp[2], SPAN, "the step runs in its own span");
  assert.equal(task.traceId, TRACE);
});

test("RelayMesh.open agents: a module agent throwing NonRetryableError is dead-lettered after one attempt", async (t) => {
  const mesh = await env(t).open();
  const failed = record(mesh, ["step:failed"]);
  const { taskId } = await mesh.submit({ agent: "non-retryable", input: 7, retry: { maxAttempts: 5 } });
  const task = await mesh.waitFor(taskId, { timeoutMs: WAIT_MS });
  assert.equal(task.status, "DEAD_LETTER");
  const step = task.steps[0]!;
  assert.equal(step.attempt, 1);
  assert.equal(step.maxAttempts, 5);
  assert.equal(step.error?.code, ErrorCode.NON_RETRYABLE);
  assert.equal(step.error?.name, "NonRetryableError");
  assert.deepEqual(failed.map((e) => [e.payload.attempt, e.payload.willRetry, e.payload.retryAtMs]), [[1, false, null]]);
});

test("RelayMesh.open agents: RetryLaterError({delayMs}) retries after delayMs, not after the backoff", async (t) => {
  // A backoff of a minute: only the agent's own delay can bring the retry within the wait.
  const mesh = await env(t, { baseBackoffMs: 60_000, maxBackoffMs: 60_000 }).open();
  const failed = record(mesh, ["step:failed"]);
  const { taskId } = await mesh.submit({ agent: "retry-later", input: { succeedOn: 3, delayMs: 20 } });
  const task = await mesh.waitFor(taskId, { timeoutMs: WAIT_MS });
  assert.equal(task.status, "SUCCESS");
  assert.deepEqual(task.steps[0]!.output, { attempt: 3 });
  assert.equal(task.steps[0]!.attempt, 3);
  assert.equal(failed.length, 2);
  for (const f of failed) {
    assert.equal(f.payload.willRetry, true);
    assert.equal(f.payload.error.code, ErrorCode.RETRY_LATER);
    assert.equal(typeof f.payload.retryAtMs, "number");
  }
});

test("RelayMesh.open agents: a plain error from a module agent is retried with backoff until it succeeds", async (t) => {
  const mesh = await env(t).open();
  const { taskId } = await mesh.submit({ agent: "flaky", input: { succeedOn: 3 } });
  const task = await mesh.waitFor(taskId, { timeoutMs: WAIT_MS });
  assert.equal(task.status, "SUCCESS");
  assert.deepEqual(task.steps[0]!.output, { attempt: 3 });
  assert.equal(task.steps[0]!.attempt, 3);
});

test("RelayMesh.open settings: an output over maxPayloadBytes fails the step", async (t) => {
  const mesh = await env(t, { maxPayloadBytes: 2_048 }).open();
  const over = await mesh.submit({ agent: "big", input: { bytes: 5_000 } });
  const under = await mesh.submit({ agent: "big", input: { bytes: 1_000 } });
  const overTask = await mesh.waitFor(over.taskId, { timeoutMs: WAIT_MS });
  const underTask = await mesh.waitFor(under.taskId, { timeoutMs: WAIT_MS });
  assert.equal(overTask.status, "DEAD_LETTER");
  assert.equal(overTask.steps[0]!.output, null);
  assert.ok(overTask.steps[0]!.error, "the failure is recorded");
  assert.equal(underTask.status, "SUCCESS");
  assert.equal((underTask.steps[0]!.output as string).length, 1_000);
});

test("submit: an idempotency key returns the same task (also through submitWorkflow)", async (t) => {
  const mesh = await env(t).open({ work: false });
  const submitted = record(mesh, ["task:submitted"]);
  const first = await mesh.submit({ agent: "echo", input: 1, idempotencyKey: "order-42" });
  const again = await mesh.submit({ agent: "echo", input: 2, idempotencyKey: "order-42" });
  assert.equal(first.created, true);
  assert.deepEqual(again, { taskId: first.taskId, created: false });
  const viaOption = await mesh.submitWorkflow({ steps: [{ id: "x", agent: "echo" }] }, { idempotencyKey: "order-42" });
  assert.equal(viaOption.taskId, first.taskId);
  assert.equal(viaOption.created, false);
  const wf1 = await mesh.submitWorkflow({ idempotencyKey: "wf", steps: [{ id: "x", agent: "echo" }] });
  const wf2 = await mesh.submitWorkflow({ idempotencyKey: "wf", steps: [{ id: "x", agent: "echo" }] });
  assert.equal(wf2.taskId, wf1.taskId);
  assert.equal(wf2.created, false);
  assert.equal((await mesh.listTasks()).total, 2);
  assert.deepEqual((await mesh.getTask(first.taskId)).steps[0]!.input, 1, "the first submission is kept");
  assert.deepEqual(submitted.map((e) => e.payload.created), [true, false, false, true, false]);
});

test("submitWorkflow: an invalid workflow is rejected with every problem and nothing is written", async (t) => {
  const mesh = await env(t).open({ work: false });
  await assert.rejects(
    mesh.submitWorkflow({ steps: [{ id: "a", agent: "nobody" }, { id: "b", agent: "echo", dependsOn: ["zz"] }] }),
    (error: { code?: string; problems?: unknown[] }) => {
      assert.equal(error.code, ErrorCode.INVALID_INPUT);
      assert.equal(error.problems?.length, 2);
      return true;
    },
  );
  await assert.rejects(mesh.submit({ agent: "sleep", input: { ms: "x" } }), { code: ErrorCode.INVALID_INPUT });
  assert.equal((await mesh.listTasks()).total, 0);
});

test("RelayMesh events: step:started, step:succeeded, step:failed and task:finished carry the right payloads", async (t) => {
  const mesh = await env(t).open();
  const events = record(mesh, ["task:submitted", "step:started", "step:succeeded", "step:failed", "task:finished"]);
  const { taskId } = await mesh.submitWorkflow({
    steps: [
      { id: "ok", agent: "echo", input: "hi" },
      { id: "flaky", agent: "flaky", input: { succeedOn: 2 }, dependsOn: ["ok"] },
    ],
  });
  const task = await mesh.waitFor(taskId, { timeoutMs: WAIT_MS });
  assert.equal(task.status, "SUCCESS");
  const mine = events.filter((e) => e.payload.taskId === taskId);
  const shape = mine.map((e) => {
    const p = e.payload as Record<string, unknown>;
    return [e.name, p.stepId ?? null, p.attempt ?? null];
  });
  assert.deepEqual(shape, [
    ["task:submitted", null, null],
    ["step:started", "ok", 1],
    ["step:succeeded", "ok", 1],
    ["step:started", "flaky", 1],
    ["step:failed", "flaky", 1],
    ["step:started", "flaky", 2],
    ["step:succeeded", "flaky", 2],
    ["task:finished", null, null],
  ]);
  const started = mine.filter((e) => e.name === "step:started").map((e) => e.payload as EngineEventMap["step:started"]);
  assert.equal(started[0]!.agent, "echo");
  assert.equal(started[1]!.agent, "flaky");
  assert.ok(started[2]!.leaseEpoch > started[1]!.leaseEpoch, "a retry runs under a new lease epoch");
  assert.equal(started[2]!.leaseEpoch, stepOf(task, "flaky").leaseEpoch);
  assert.equal(started[0]!.leaseEpoch, stepOf(task, "ok").leaseEpoch);
  const succeeded = mine.filter((e) => e.name === "step:succeeded").map((e) => e.payload as EngineEventMap["step:succeeded"]);
  for (const s of succeeded) assert.ok(typeof s.durationMs === "number" && s.durationMs >= 0);
  const failure = mine.find((e) => e.name === "step:failed")!.payload as EngineEventMap["step:failed"];
  assert.equal(failure.willRetry, true);
  assert.equal(typeof failure.retryAtMs, "number");
  assert.equal(failure.error.message, "flaky failure on attempt 1");
  assert.deepEqual(mine.find((e) => e.name === "task:submitted")!.payload, { taskId, created: true });
  assert.deepEqual(mine.at(-1)!.payload, { taskId, status: "SUCCESS" });
});

test("RelayMesh events: step:succeeded is emitted once the success is committed", async (t) => {
  const mesh = await env(t).open();
  const seen: Promise<string | undefined>[] = [];
  // What a listener can read from the store at the moment the event arrives.
  mesh.on("step:succeeded", (e) => { seen.push(mesh.store.getTask(e.taskId).then((task) => task?.steps.find((s) => s.stepId === e.stepId)?.status)); });
  const { taskId } = await mesh.submitWorkflow({ steps: [{ id: "a", agent: "echo" }, { id: "b", agent: "echo", dependsOn: ["a"] }] });
  assert.equal((await mesh.waitFor(taskId, { timeoutMs: WAIT_MS })).status, "SUCCESS");
  assert.equal(seen.length, 2);
  assert.deepEqual(await Promise.all(seen), ["SUCCESS", "SUCCESS"]);
});

test("waitFor: resolves for a task finished by another RelayMesh instance on the same root", async (t) => {
  const e = env(t);
  const submitter = await e.open({ work: false });
  const finishedHere = record(submitter, ["task:finished"]);
  const { taskId } = await submitter.submit({ agent: "echo", input: "elsewhere" });
  const worker = await e.open();
  const finishedThere = next(worker, "task:finished", (p) => p.taskId === taskId);
  const task = await submitter.waitFor(taskId, { timeoutMs: WAIT_MS, pollIntervalMs: 20 });
  assert.equal(task.status, "SUCCESS");
  assert.equal(task.steps[0]!.output, "elsewhere");
  assert.equal(task.steps[0]!.leaseOwner, worker.nodeId);
  assert.deepEqual(await finishedThere, { taskId, status: "SUCCESS" });
  assert.deepEqual(finishedHere, [], "the submitter learnt it from the store, not from its own events");
});

test("waitFor: an unknown id is NOT_FOUND and an unfinished task times out with WAIT_TIMEOUT", async (t) => {
  const mesh = await env(t).open({ work: false });
  await assert.rejects(mesh.waitFor("no-such-task"), { code: ErrorCode.NOT_FOUND });
  const { taskId } = await mesh.submit({ agent: "echo" });
  await assert.rejects(mesh.waitFor(taskId, { timeoutMs: 50, pollIntervalMs: 10 }), { code: ErrorCode.WAIT_TIMEOUT });
});

test("waitFor: a close ends the wait with INVALID_STATE once it is done; a task the close drains still resolves it", async (t) => {
  const e = env(t);
  const idle = await e.open({ work: false });
  const { taskId } = await idle.submit({ agent: "echo" });
  // Nobody works on it: without the close the wait would poll for ever (and keep the process alive).
  const waiting = idle.waitFor(taskId, { pollIntervalMs: 10 });
  await idle.close();
  await withDeadline(assert.rejects(waiting, { code: ErrorCode.INVALID_STATE, message: new RegExp(taskId) }), WAIT_MS, "the wait to end with the close");

  const worker = await e.open();
  const started = next(worker, "step:started");
  const long = await worker.submit({ agent: "sleep", input: { ms: 300 } });
  await started;
  const drained = worker.waitFor(long.taskId, { pollIntervalMs: 10 });
  await worker.close();
  assert.equal((await drained).status, "SUCCESS", "the close drained the step first");
});

test("storeThread: SQLite runs on a store thread also with work: false (an engine started later keeps it); false, and the CLI's one-shot commands, keep it on the calling thread", { skip: TEST_STORE === "postgres" ? "the store thread is the SQLite store's" : false }, async (t) => {
  const e = env(t);
  const later = await e.open({ work: false });
  assert.equal(later.store.pipelining, "ordered", "a store thread");
  await later.start();
  const { taskId } = await later.submit({ agent: "echo", input: 1 });
  assert.equal((await later.waitFor(taskId, { timeoutMs: WAIT_MS })).status, "SUCCESS");
  const here = await e.open({ work: false, storeThread: false });
  assert.equal(here.store.pipelining, undefined, "the calling thread");
  for (const [options, expected] of [[{ work: false }, undefined], [{ work: false, storeThread: true }, "ordered"], [{ work: true }, "ordered"]] as const) {
    const mesh = await openMesh({ root: e.root }, { ...options, threads: 1 });
    try {
      assert.equal(mesh.store.pipelining, expected, JSON.stringify(options));
    } finally {
      await mesh.close({ timeoutMs: 0 });
    }
  }
});

test("close: is idempotent and drains in-flight work", async (t) => {
  const e = env(t);
  const mesh = await e.open();
  // Listen first: the commit that accepts the task may claim and start it before submit() resolves.
  const started = next(mesh, "step:started");
  const { taskId } = await mesh.submit({ agent: "sleep", input: { ms: 300 } });
  assert.equal((await started).taskId, taskId);
  const closing = mesh.close();
  assert.equal(mesh.state, "closing");
  assert.equal(mesh.close(), closing, "a second call returns the first call's promise");
  await withDeadline(closing, WAIT_MS, "close() to drain");
  assert.equal(mesh.state, "closed");
  await mesh.close();
  const reader = await e.open({ work: false });
  const task = await reader.getTask(taskId);
  assert.equal(task.status, "SUCCESS", "the in-flight step finished and was committed before close() resolved");
  assert.deepEqual(task.steps[0]!.output, { sleptMs: 300 });
  assert.equal(task.steps[0]!.attempt, 1);
});

test("close({timeoutMs}): releases the leases of steps still running; the step is READY with its attempt not counted, and a new instance finishes it", async (t) => {
  const e = env(t);
  const openFile = join(e.root, "gate-open");
  const abortedFile = join(e.root, "gate-aborted");
  const mesh = await e.open();
  const started = next(mesh, "step:started");
  const { taskId } = await mesh.submit({ agent: "gate", input: { openFile, abortedFile } });
  assert.equal((await started).taskId, taskId);
  await withDeadline(mesh.close({ timeoutMs: 100 }), 5_000, "close({timeoutMs: 100}) to abort the running step and finish");
  assert.ok(existsSync(abortedFile), "the running step's AbortSignal fired");
  assert.equal(mesh.state, "closed");

  const reader = await e.open({ work: false });
  const released = (await reader.getTask(taskId)).steps[0]!;
  assert.equal(released.status, "READY");
  assert.equal(released.attempt, 0, "the interrupted attempt is not counted");
  assert.equal(released.leaseOwner, null);

  writeFileSync(openFile, "");
  const successor = await e.open();
  const task = await successor.waitFor(taskId, { timeoutMs: WAIT_MS });
  assert.equal(task.status, "SUCCESS");
  assert.deepEqual(task.steps[0]!.output, { passed: true, attempt: 1 });
  assert.equal(task.steps[0]!.attempt, 1);
  assert.equal(task.steps[0]!.leaseOwner, successor.nodeId);
});

test("close({timeoutMs: 0}): an abort that arrives while the agent's module is still loading releases the step without crashing anything", async (t) => {
  const uncaught: unknown[] = [];
  const onUncaught = (error: unknown) => { uncaught.push(error); };
  process.on("uncaughtException", onUncaught);
  t.after(() => { process.off("uncaughtException", onUncaught); });
  const e = env(t);
  const mesh = await e.open();
  const started = next(mesh, "step:started");
  const { taskId } = await mesh.submit({ agent: "check-first" });
  await started;
  // The module takes 400 ms to import: the abort reaches the thread before the agent is called.
  await withDeadline(mesh.close({ timeoutMs: 0 }), 5_000, "close({timeoutMs: 0})");
  const reader = await e.open({ work: false });
  const step = (await reader.getTask(taskId)).steps[0]!;
  assert.equal(step.status, "READY");
  assert.equal(step.attempt, 0);
  assert.deepEqual(uncaught.map((x) => String((x as Error)?.stack ?? x)), [], "no uncaught error reached the host process");
});

test("close: submit, submitWorkflow and start after close throw RELAYMESH_ERR_INVALID_STATE", async (t) => {
  const mesh = await env(t).open();
  await mesh.close();
  await assert.rejects(mesh.submit({ agent: "echo" }), { code: ErrorCode.INVALID_STATE });
  await assert.rejects(mesh.submit({ agent: "echo" }), { code: "RELAYMESH_ERR_INVALID_STATE" });
  await assert.rejects(mesh.submitWorkflow({ steps: [{ id: "a", agent: "echo" }] }), { code: ErrorCode.INVALID_STATE });
  assert.throws(() => mesh.start(), { code: ErrorCode.INVALID_STATE });
});

test("RelayMesh.open({work: false}): submits but runs nothing until start()", async (t) => {
  const mesh = await env(t).open({ work: false });
  assert.equal(mesh.state, "idle");
  let startedBeforeStart = 0;
  let startedAfterStart = 0;
  let started = false;
  mesh.on("step:started", () => { if (started) startedAfterStart++; else startedBeforeStart++; });
  const { taskId } = await mesh.submit({ agent: "echo", input: "later" });
  // Bounded negative check: the task does not finish while the engine is not working.
  await assert.rejects(mesh.waitFor(taskId, { timeoutMs: 300, pollIntervalMs: 20 }), { code: ErrorCode.WAIT_TIMEOUT });
  const waiting = await mesh.getTask(taskId);
  assert.equal(waiting.status, "PENDING");
  assert.equal(waiting.steps[0]!.status, "READY");
  assert.equal(startedBeforeStart, 0);

  started = true;
  mesh.start();
  assert.equal(mesh.state, "running");
  const task = await mesh.waitFor(taskId, { timeoutMs: WAIT_MS });
  assert.equal(task.status, "SUCCESS");
  assert.equal(task.steps[0]!.output, "later");
  assert.equal(startedBeforeStart, 0);
  assert.equal(startedAfterStart, 1);
});

test("RelayMesh.open: invalid options and settings are rejected with RELAYMESH_ERR_INVALID_OPTIONS", async (t) => {
  const e = env(t);
  await assert.rejects(RelayMesh.open({ root: e.root, store: storeFor(e.root), concurrency: 0 }), { code: ErrorCode.INVALID_OPTIONS });
  await assert.rejects(RelayMesh.open({ root: e.root, bogus: true } as unknown as EngineOptions), { code: ErrorCode.INVALID_OPTIONS });
  await assert.rejects(e.open({ settings: { leaseTimeoutMs: 1 } }), { code: ErrorCode.INVALID_OPTIONS });
});

test("cancel (hard, in-process): the running step's AbortSignal fires, task:finished is emitted once, and a waitFor resolves", async (t) => {
  const mesh = await env(t).open();
  const started = next(mesh, "step:started");
  const { taskId } = await mesh.submitWorkflow({ steps: [{ id: "long", agent: "sleep", input: { ms: 60_000 } }, { id: "after", agent: "echo", dependsOn: ["long"] }] });
  assert.equal((await started).taskId, taskId);
  const finished = record(mesh, ["task:finished"]);
  const waiting = mesh.waitFor(taskId, { timeoutMs: WAIT_MS });
  const result = await mesh.cancel(taskId, { mode: "hard", reason: "operator" });
  assert.equal(result.status, "CANCELLED");
  assert.deepEqual(result.cancelledSteps.sort(), ["after", "long"]);
  assert.equal((await waiting).status, "CANCELLED");
  // The aborted sleep settles at once: a graceful close does not wait for its 60 s.
  await withDeadline(mesh.close(), 5_000, "a close with nothing left running");
  assert.deepEqual(finished.map((e) => e.payload), [{ taskId, status: "CANCELLED" }]);
  assert.equal((await mesh.store.listLeaseConflicts({ sinceMs: 0, limit: 10 }).catch(() => [])).length, 0);
});
