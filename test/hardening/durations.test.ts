import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { buildSingleTask, buildWorkflowTask } from "../../src/model/build-task.js";
import { AgentRegistry } from "../../src/agents/registry.js";
import { SettingsSchema } from "../../src/model/settings.js";
import { loadScriptAgents } from "../../src/agents/scripts.js";
import { loadRetryPolicies } from "../../src/agents/retry-policies.js";
import { MAX_TIMER_MS } from "../../src/model/duration.js";
import { CloseOptionsSchema, EngineOptionsSchema } from "../../src/options.js";
import { InvalidInputError, InvalidOptionsError } from "../../src/errors.js";
import { RelayMesh } from "../../src/index.js";
import { tempRoot } from "../helpers.js";

const TOO_LONG = MAX_TIMER_MS + 1;
const ctx = { agents: new AgentRegistry([], "/tmp"), settings: SettingsSchema.parse({}), source: "flow.json" };

function problemAt(fn: () => unknown, where: RegExp): void {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof InvalidInputError, String(error));
    assert.ok(error.problems.some((p) => where.test(p.where) && /2147483647/.test(p.message)), JSON.stringify(error.problems));
    return;
  }
  assert.fail("should have thrown");
}

test("durations: every duration of a workflow is bounded at 2^31-1 ms (what a timer honours), naming the field", () => {
  buildWorkflowTask({ steps: [{ id: "a", agent: "echo", timeoutMs: MAX_TIMER_MS, retry: { baseBackoffMs: MAX_TIMER_MS, maxBackoffMs: MAX_TIMER_MS } }] }, ctx);
  problemAt(() => buildWorkflowTask({ steps: [{ id: "a", agent: "echo", timeoutMs: TOO_LONG }] }, ctx), /steps\[0\] \(id "a"\)\.timeoutMs/);
  problemAt(() => buildWorkflowTask({ steps: [{ id: "a", agent: "echo", retry: { baseBackoffMs: TOO_LONG } }] }, ctx), /retry\.baseBackoffMs/);
  problemAt(() => buildWorkflowTask({ steps: [{ id: "a", agent: "echo", retry: { maxBackoffMs: TOO_LONG } }] }, ctx), /retry\.maxBackoffMs/);
  problemAt(() => buildSingleTask({ agent: "echo", timeoutMs: TOO_LONG }, ctx), /timeoutMs/);
});

test("durations: settings, script agents, retry policies and engine options refuse durations past 2^31-1 ms", (t) => {
  for (const field of ["leaseTimeoutMs", "suspectAfterMs", "deadAfterMs", "suspectRecoverMinMs", "deadRecoverMinMs", "baseBackoffMs", "maxBackoffMs", "meshPruneOlderThanMs", "meshPruneIntervalMs"]) {
    const parsed = SettingsSchema.safeParse({ [field]: TOO_LONG });
    assert.equal(parsed.success, false, field);
    assert.ok(parsed.error!.issues.some((i) => i.path[0] === field), field);
  }
  assert.equal(CloseOptionsSchema.safeParse({ timeoutMs: TOO_LONG }).success, false);
  assert.equal(EngineOptionsSchema.safeParse({ pollIntervalMs: TOO_LONG }).success, false);

  const { root, cleanup } = tempRoot();
  t.after(cleanup);
  mkdirSync(join(root, "agents"));
  writeFileSync(join(root, "agents", "scripts.json"), JSON.stringify({ agents: [{ id: "s", command: ["true"], timeoutMs: TOO_LONG }] }));
  problemAt(() => loadScriptAgents(root), /agents\[0\] \(id "s"\)\.timeoutMs/);
  const policies = join(root, "agents", "retry-policies.json");
  writeFileSync(policies, JSON.stringify({ agents: [{ id: "echo", maxBackoffMs: TOO_LONG }] }));
  problemAt(() => loadRetryPolicies(policies, new Set(["echo"])), /maxBackoffMs/);
});

test("durations: waitFor, watchSettings and watchKv refuse intervals a timer cannot honour", async (t) => {
  const { root, cleanup } = tempRoot();
  t.after(cleanup);
  const mesh = await RelayMesh.open({ root, work: false });
  t.after(() => mesh.close());
  const { taskId } = await mesh.submit({ agent: "echo", input: 1 });
  await assert.rejects(mesh.waitFor(taskId, { timeoutMs: TOO_LONG }), InvalidOptionsError);
  assert.throws(() => mesh.watchSettings(0), InvalidOptionsError);
  assert.throws(() => mesh.watchKv("ns", () => {}, { intervalMs: TOO_LONG }), InvalidOptionsError);
});
