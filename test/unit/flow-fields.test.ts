import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildSingleTask, buildWorkflowTask } from "../../src/model/build-task.js";
import { AgentRegistry } from "../../src/agents/registry.js";
import { SettingsSchema } from "../../src/model/settings.js";
import { InvalidInputError } from "../../src/errors.js";
import { parseDurationMs, parseTimeMs, resolveKey } from "../../src/model/flow.js";
import { loadAgents, readRootConfig, rootPaths } from "../../src/root.js";

const NOW = 1_800_000_000_000;
const settings = SettingsSchema.parse({ rateLimits: { openai: { perSecond: 20, burst: 40 }, slow: { perSecond: 0.5 } } });
const ctx = { agents: new AgentRegistry([], "/tmp"), settings, source: "flow.json", nowMs: NOW };

function problems(raw: unknown): string[] {
  try {
    buildWorkflowTask(raw, ctx);
  } catch (error) {
    assert.ok(error instanceof InvalidInputError, String(error));
    return error.problems.map((p) => `${p.where}: ${p.message}`);
  }
  return assert.fail("should have thrown");
}

test("parseDurationMs / parseTimeMs: units, compounds, plain ms; ISO and epoch", () => {
  assert.equal(parseDurationMs("500ms"), 500);
  assert.equal(parseDurationMs("30s"), 30_000);
  assert.equal(parseDurationMs("1h30m"), 5_400_000);
  assert.equal(parseDurationMs("2d"), 172_800_000);
  assert.equal(parseDurationMs("250"), 250);
  for (const bad of ["", "5x", "-1s", "1 h", "s"]) assert.equal(parseDurationMs(bad), null, bad);
  assert.equal(parseTimeMs("2030-01-01T00:00:00Z"), Date.parse("2030-01-01T00:00:00Z"));
  assert.equal(parseTimeMs(1_900_000_000_000), 1_900_000_000_000);
  assert.equal(parseTimeMs("tomorrow"), null);
});

test("resolveKey: fills {{input.path}}, JSON-encodes non-strings, names a missing path; never reads inherited properties", () => {
  assert.equal(resolveKey("customer-{{input.customerId}}", { customerId: 42 }), "customer-42");
  assert.equal(resolveKey("{{ input.a.b }}/{{input.c}}", { a: { b: "x" }, c: [1] }), "x/[1]");
  assert.equal(resolveKey("static", null), "static");
  assert.throws(() => resolveKey("{{input.missing}}", {}), /input\.missing/);
  assert.throws(() => resolveKey("{{input.constructor}}", {}), /input\.constructor/);
});

test("buildWorkflowTask: resolves delays, deadlines, concurrency, rate limits and dedupe; workflow fields are step defaults", () => {
  const task = buildWorkflowTask({
    delayMs: 5_000, deadlineMs: 60_000,
    concurrency: { key: "cust-{{input.c}}", limit: 2 },
    rateLimit: "openai",
    dedupe: { key: "d-{{input.c}}", windowMs: 1_000 },
    steps: [
      { id: "a", agent: "echo", input: { c: 7, t: "acme" } },
      { id: "b", agent: "echo", dependsOn: ["a"], notBefore: NOW + 60_000 - 1, input: { t: "zen" },
        concurrency: { key: "own", limit: 1, strategy: "cancel-newest" }, rateLimit: { name: "openai", key: "{{input.t}}" } },
    ],
  }, ctx);
  assert.equal(task.deadlineAtMs, NOW + 60_000);
  assert.deepEqual(task.dedupe, { key: "d-7", windowMs: 1_000, mode: "drop" });
  const [a, b] = task.steps;
  assert.equal(a!.notBeforeMs, NOW + 5_000);
  assert.deepEqual(a!.concurrency, { key: "cust-7", limit: 2, strategy: "queue" });
  assert.deepEqual(a!.rateLimit, { name: "openai", bucket: "openai", perSecond: 20, burst: 40 });
  assert.equal(b!.notBeforeMs, NOW + 60_000 - 1);
  assert.deepEqual(b!.concurrency, { key: "own", limit: 1, strategy: "cancel-newest" });
  assert.equal(b!.rateLimit!.bucket, "openai\u001fzen");
  // A plain workflow has none of it.
  const plain = buildWorkflowTask({ steps: [{ id: "a", agent: "echo" }] }, ctx);
  assert.deepEqual([plain.deadlineAtMs, plain.dedupe, plain.steps[0]!.notBeforeMs, plain.steps[0]!.concurrency, plain.steps[0]!.rateLimit], [null, null, null, null, null]);
});

test("buildSingleTask: submit options --delay / --not-before override the spec's", () => {
  assert.equal(buildSingleTask({ agent: "echo" }, ctx, { delayMs: 30_000 }).steps[0]!.notBeforeMs, NOW + 30_000);
  assert.equal(buildSingleTask({ agent: "echo", delayMs: 5 }, ctx, { notBefore: "2030-01-01T00:00:00Z" }).steps[0]!.notBeforeMs, Date.parse("2030-01-01T00:00:00Z"));
  assert.equal(buildSingleTask({ agent: "echo" }, ctx, { notBefore: NOW - 1 }).steps[0]!.notBeforeMs, null, "a time already past starts at once");
});

test("buildWorkflowTask: bad flow fields are rejected, each problem naming its field", () => {
  const all = problems({
    deadlineMs: 0, notBefore: "soon", delayMs: 2 ** 31,
    concurrency: { key: "", limit: 0, strategy: "fifo" },
    dedupe: { key: "k", windowMs: 0, mode: "merge" },
    steps: [{ id: "a", agent: "echo", rateLimit: "nope", concurrency: { key: "{{input.x}}", limit: 1 }, input: {} }],
  }).join("\n");
  for (const field of ["deadlineMs", "notBefore", "delayMs", "concurrency.key", "concurrency.limit", "concurrency.strategy", "dedupe.windowMs", "dedupe.mode"]) {
    assert.match(all, new RegExp(field.replace(".", "\\.")), field);
  }
  assert.match(problems({ steps: [{ id: "a", agent: "echo", rateLimit: "nope" }] }).join(), /step "a"\.rateLimit: unknown rate limit "nope"/);
  assert.match(problems({ steps: [{ id: "a", agent: "echo", concurrency: { key: "k-{{input.x}}", limit: 1 }, input: {} }] }).join(), /step "a"\.concurrency\.key: \{\{input\.x\}\} is not in the input/);
  assert.match(problems({ deadlineMs: 10, delayMs: 100, steps: [{ id: "a", agent: "echo" }] }).join(), /deadlineMs: the deadline falls before/);
  assert.match(problems({ delayMs: 1, notBefore: NOW, steps: [{ id: "a", agent: "echo" }] }).join(), /not both/);
  assert.match(problems({ concurrency: { key: "{{secret}}", limit: 1 }, steps: [{ id: "a", agent: "echo" }] }).join(), /concurrency\.key: only \{\{input\}\}/);
});

test("an agent's config names a rate limit: its steps take it unless the step or workflow names one; a key reads the step's input", () => {
  const agents = new AgentRegistry([
    { id: "llm", module: "llm.mjs", export: "default", rateLimit: { name: "openai", key: "{{input.tenant}}" } },
    { id: "plain", module: "plain.mjs", export: "default" },
  ], "/tmp", [{ id: "script", command: ["true"], timeoutMs: 1_000, mode: "oneshot", instances: 1, rateLimit: "slow" }]);
  const withAgents = { ...ctx, agents };
  const task = buildWorkflowTask({
    steps: [
      { id: "a", agent: "llm", input: { tenant: "acme" } },
      { id: "b", agent: "llm", input: { tenant: "zen" }, rateLimit: "slow" },
      { id: "c", agent: "script" },
      { id: "d", agent: "plain" },
    ],
  }, withAgents);
  assert.deepEqual(task.steps.map((s) => s.rateLimit?.bucket ?? null), ["openai\u001facme", "slow", "slow", null]);
  assert.deepEqual(task.steps[0]!.rateLimit, { name: "openai", bucket: "openai\u001facme", perSecond: 20, burst: 40 });
  // A workflow-wide rate limit is its steps' own: it wins over the agent's.
  assert.deepEqual(buildWorkflowTask({ rateLimit: "slow", steps: [{ id: "a", agent: "llm", input: { tenant: "x" } }] }, withAgents).steps[0]!.rateLimit!.bucket, "slow");
  // One-step tasks too.
  assert.equal(buildSingleTask({ agent: "llm", input: { tenant: "t1" } }, withAgents).steps[0]!.rateLimit!.bucket, "openai\u001ft1");
  // The agent's key template needs its field in the step's input; a limit gone from the settings names the agent.
  assert.throws(() => buildWorkflowTask({ steps: [{ id: "a", agent: "llm", input: {} }] }, withAgents), (e: unknown) =>
    e instanceof InvalidInputError && e.problems.some((p) => /step "a"\.rateLimit\.key/.test(p.where)));
  assert.throws(() => buildWorkflowTask({ steps: [{ id: "a", agent: "script" }] }, { ...withAgents, settings: SettingsSchema.parse({}) }), (e: unknown) =>
    e instanceof InvalidInputError && e.problems.some((p) => /step "a"\.rateLimit$/.test(p.where) && /unknown rate limit "slow" named by agent "script"'s config/.test(p.message)));
});

test("loadAgents: an agent config naming an unknown rate limit is refused, naming the file, agent and limit", () => {
  const dir = mkdtempSync(join(tmpdir(), "relaymesh-agent-rate-"));
  try {
    const paths = rootPaths(dir);
    mkdirSync(paths.agentsDir);
    writeFileSync(paths.modules, JSON.stringify({ agents: [{ id: "llm", module: "llm.mjs", rateLimit: { name: "openai", key: "{{input.t}}" } }] }));
    writeFileSync(join(paths.agentsDir, "scripts.json"), JSON.stringify({ agents: [{ id: "sh", command: ["true"], timeoutMs: 1_000, rateLimit: "nope" }] }));
    const bad = (rateLimits: Record<string, unknown>, extra: { id: string; module: string; export: string; rateLimit?: string }[] = []) => {
      writeFileSync(paths.settings, JSON.stringify({ rateLimits }));
      try {
        loadAgents(paths, readRootConfig(paths), extra);
        return [];
      } catch (error) {
        assert.ok(error instanceof InvalidInputError, String(error));
        return error.problems.map((p) => `${p.where}: ${p.message}`);
      }
    };
    assert.deepEqual(bad({ openai: { perSecond: 1 } }), [`${join(paths.agentsDir, "scripts.json")}: agent "sh".rateLimit: unknown rate limit "nope" (settings rateLimits has openai)`]);
    assert.deepEqual(bad({ nope: { perSecond: 1 } }), [`${paths.modules}: agent "llm".rateLimit: unknown rate limit "openai" (settings rateLimits has nope)`]);
    assert.deepEqual(bad({ nope: { perSecond: 1 }, openai: { perSecond: 1 } }, [{ id: "api", module: "x.mjs", export: "default", rateLimit: "other" }]),
      [`options.agents: agent "api".rateLimit: unknown rate limit "other" (settings rateLimits has nope, openai)`]);
    assert.deepEqual(bad({ nope: { perSecond: 1 }, openai: { perSecond: 1 } }), []);
    // A bad reference is a schema error of the file.
    writeFileSync(paths.modules, JSON.stringify({ agents: [{ id: "llm", module: "llm.mjs", rateLimit: { name: "openai", keys: "x" } }] }));
    assert.throws(() => readRootConfig(paths), (e: unknown) => e instanceof InvalidInputError && e.problems.some((p) => /rateLimit/.test(p.where)));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("SettingsSchema: rateLimits validated; a name that could reach a prototype is refused", () => {
  assert.throws(() => SettingsSchema.parse({ rateLimits: { x: { perSecond: 0 } } }));
  assert.throws(() => SettingsSchema.parse({ rateLimits: { x: { perSecond: 1, burst: 0 } } }));
  assert.throws(() => SettingsSchema.parse({ rateLimits: { "_x": { perSecond: 1 } } }));
  const hostile = SettingsSchema.parse(JSON.parse('{"rateLimits": {"__proto__": {"perSecond": 1}}}'));
  assert.equal(Object.hasOwn(hostile.rateLimits, "__proto__"), false);
  assert.equal(({} as { perSecond?: number }).perSecond, undefined);
  assert.throws(() => buildWorkflowTask({ rateLimit: "__proto__", steps: [{ id: "a", agent: "echo" }] }, { ...ctx, settings: hostile }));
  assert.deepEqual(SettingsSchema.parse({}).rateLimits, {});
});
