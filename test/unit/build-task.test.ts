import { test } from "node:test";
import assert from "node:assert/strict";
import { buildSingleTask, buildWorkflowTask, SINGLE_STEP_ID } from "../../src/model/build-task.js";
import { AgentRegistry } from "../../src/agents/registry.js";
import { SettingsSchema } from "../../src/model/settings.js";
import { ErrorCode, InvalidInputError } from "../../src/errors.js";

const settings = SettingsSchema.parse({ maxAttempts: 5, baseBackoffMs: 100, maxBackoffMs: 2_000 });
const ctx = { agents: new AgentRegistry([], "/tmp"), settings, source: "flow.json" };
const TRACE = "4bf92f3577b34da6a3ce929d0e0e4736";
const SPAN = "00f067aa0ba902b7";

function invalid(fn: () => unknown): InvalidInputError {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof InvalidInputError, String(error));
    assert.equal(error.code, ErrorCode.INVALID_INPUT);
    return error;
  }
  assert.fail("should have thrown InvalidInputError");
}

test("buildWorkflowTask: retry precedence is step retry over settings, field by field", () => {
  const task = buildWorkflowTask({
    steps: [
      { id: "own", agent: "echo", retry: { maxAttempts: 2, baseBackoffMs: 10, maxBackoffMs: 50 } },
      { id: "partial", agent: "echo", retry: { maxAttempts: 1 } },
      { id: "plain", agent: "echo" },
    ],
  }, ctx);
  const byId = Object.fromEntries(task.steps.map((s) => [s.stepId, s]));
  assert.deepEqual([byId.own!.maxAttempts, byId.own!.baseBackoffMs, byId.own!.maxBackoffMs], [2, 10, 50]);
  assert.deepEqual([byId.partial!.maxAttempts, byId.partial!.baseBackoffMs, byId.partial!.maxBackoffMs], [1, 100, 2_000]);
  assert.deepEqual([byId.plain!.maxAttempts, byId.plain!.baseBackoffMs, byId.plain!.maxBackoffMs], [5, 100, 2_000]);
});

test("buildWorkflowTask: a step base backoff above the settings cap never yields maxBackoffMs < baseBackoffMs", () => {
  const task = buildWorkflowTask({ steps: [{ id: "slow", agent: "echo", retry: { baseBackoffMs: 10_000 } }] }, ctx);
  const step = task.steps[0]!;
  assert.equal(step.baseBackoffMs, 10_000);
  assert.ok(step.maxBackoffMs >= step.baseBackoffMs, `${step.maxBackoffMs} < ${step.baseBackoffMs}`);
});

test("buildWorkflowTask: resolves priorities, dependencies, inputs and timeouts into rows", () => {
  const task = buildWorkflowTask({
    name: "n", priority: "high", failFast: true, idempotencyKey: "spec-key",
    steps: [
      { id: "a", agent: "echo", input: { x: [1, 2] } },
      { id: "b", agent: "echo", dependsOn: ["a"], priority: "low", timeoutMs: 250 },
    ],
  }, ctx);
  assert.equal(task.name, "n");
  assert.equal(task.priority, 2);
  assert.equal(task.failFast, true);
  assert.equal(task.idempotencyKey, "spec-key");
  assert.match(task.taskId, /^[0-9a-f-]{36}$/);
  const [a, b] = task.steps;
  assert.equal(a!.priority, 2);
  assert.equal(b!.priority, 0);
  assert.deepEqual(JSON.parse(a!.inputJson), { x: [1, 2] });
  assert.equal(b!.inputJson, "null");
  assert.deepEqual(a!.dependsOn, []);
  assert.deepEqual(b!.dependsOn, ["a"]);
  assert.equal(a!.timeoutMs, null);
  assert.equal(b!.timeoutMs, 250);
});

test("buildWorkflowTask: the idempotencyKey option overrides the spec's key", () => {
  const task = buildWorkflowTask({ idempotencyKey: "spec", steps: [{ id: "a", agent: "echo" }] }, ctx, { idempotencyKey: "option" });
  assert.equal(task.idempotencyKey, "option");
});

test("buildWorkflowTask: each call makes a new task id and trace id", () => {
  const spec = { steps: [{ id: "a", agent: "echo" }] };
  const t1 = buildWorkflowTask(spec, ctx);
  const t2 = buildWorkflowTask(spec, ctx);
  assert.notEqual(t1.taskId, t2.taskId);
  assert.notEqual(t1.traceId, t2.traceId);
  assert.match(t1.traceId, /^[0-9a-f]{32}$/);
  assert.equal(t1.parentSpanId, null);
});

test("buildWorkflowTask: a given traceparent is continued (its trace id is kept, its span becomes the parent)", () => {
  const task = buildWorkflowTask({ steps: [{ id: "a", agent: "echo" }] }, ctx, { traceparent: `00-${TRACE}-${SPAN}-01` });
  assert.equal(task.traceId, TRACE);
  assert.equal(task.parentSpanId, SPAN);
});

test("buildWorkflowTask: an invalid traceparent is rejected, and reported with the workflow's own problems", () => {
  for (const bad of ["nonsense", `00-${TRACE.toUpperCase()}-${SPAN}-01`, `00-${"0".repeat(32)}-${SPAN}-01`, `00-${TRACE}-${"0".repeat(16)}-01`, `00-${TRACE}-${SPAN}`]) {
    const error = invalid(() => buildWorkflowTask({ steps: [{ id: "a", agent: "echo" }] }, ctx, { traceparent: bad }));
    assert.ok(error.problems.some((p) => p.where.includes("traceparent")), `${bad}: ${JSON.stringify(error.problems)}`);
  }
  const both = invalid(() => buildWorkflowTask({ steps: [{ id: "a", agent: "nobody" }] }, ctx, { traceparent: "bad" }));
  assert.ok(both.problems.some((p) => p.where.includes("traceparent")));
  assert.ok(both.problems.some((p) => p.message.includes("nobody")));
});

test("buildWorkflowTask: rejects unknown agents and checks built-in agent inputs", () => {
  const error = invalid(() => buildWorkflowTask({ steps: [{ id: "z", agent: "sleep", input: { ms: "soon" } }] }, ctx));
  assert.ok(error.problems.some((p) => p.where.includes('"z"') && p.where.includes("input")), JSON.stringify(error.problems));
});

test("buildWorkflowTask: an input over the settings' maxPayloadBytes is rejected", () => {
  const small = { ...ctx, settings: SettingsSchema.parse({ maxPayloadBytes: 1_024 }) };
  const error = invalid(() => buildWorkflowTask({ steps: [{ id: "big", agent: "echo", input: "x".repeat(2_000) }] }, small));
  assert.ok(error.problems.some((p) => p.where.includes('"big"') && /maxPayloadBytes/.test(p.message)));
});

test("buildSingleTask: makes a one-step task named main with the spec's retry and priority", () => {
  const task = buildSingleTask({ agent: "echo", input: 7, priority: "low", retry: { maxAttempts: 4 } }, ctx);
  assert.equal(task.steps.length, 1);
  assert.equal(task.steps[0]!.stepId, SINGLE_STEP_ID);
  assert.equal(task.steps[0]!.maxAttempts, 4);
  assert.equal(task.steps[0]!.priority, 0);
  assert.equal(task.priority, 0);
  assert.equal(task.steps[0]!.inputJson, "7");
  invalid(() => buildSingleTask({ agent: "echo", inputs: 7 }, ctx));
});
