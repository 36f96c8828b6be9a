import { test } from "node:test";
import assert from "node:assert/strict";
import { validateWorkflow, type ValidationContext } from "../../src/dag/validate.js";
import { ErrorCode, InvalidInputError, isRelayMeshError, type Problem } from "../../src/errors.js";

const ctx: ValidationContext = { source: "flow.json", knownAgents: new Set(["echo", "fail", "sleep"]), maxPayloadBytes: 100 };

/** Runs validateWorkflow expecting one InvalidInputError; returns its problems. */
function problemsOf(raw: unknown, context: ValidationContext = ctx): Problem[] {
  let caught: unknown;
  try {
    validateWorkflow(raw, context);
  } catch (error) {
    caught = error;
  }
  assert.ok(caught, "validateWorkflow should have thrown");
  assert.ok(isRelayMeshError(caught), `expected a RelayMeshError, got ${String(caught)}`);
  assert.ok(caught instanceof InvalidInputError);
  assert.equal(caught.code, ErrorCode.INVALID_INPUT);
  assert.equal(caught.code, "RELAYMESH_ERR_INVALID_INPUT");
  assert.ok(Array.isArray(caught.problems) && caught.problems.length > 0);
  return caught.problems;
}

/** The problems whose location mentions `where` (all given fragments) and whose message matches `message`. */
function find(problems: Problem[], where: string[], message: RegExp): Problem[] {
  return problems.filter((p) => where.every((w) => p.where.includes(w)) && message.test(p.message));
}

function assertHas(problems: Problem[], where: string[], message: RegExp): void {
  assert.ok(find(problems, where, message).length > 0,
    `expected a problem at ${JSON.stringify(where)} matching ${message}; got:\n${JSON.stringify(problems, null, 2)}`);
}

test("validateWorkflow: accepts a valid diamond and returns the parsed spec", () => {
  const spec = validateWorkflow({
    name: "diamond", priority: "high", failFast: true,
    steps: [
      { id: "a", agent: "echo", input: { n: 1 } },
      { id: "b", agent: "echo", dependsOn: ["a"] },
      { id: "c", agent: "echo", dependsOn: ["a"], priority: "low" },
      { id: "d", agent: "echo", dependsOn: ["b", "c"], retry: { maxAttempts: 2 }, timeoutMs: 500 },
    ],
  }, ctx);
  assert.equal(spec.steps.length, 4);
  assert.equal(spec.priority, "high");
  assert.equal(spec.failFast, true);
  assert.deepEqual(spec.steps[3]!.dependsOn, ["b", "c"]);
});

test("validateWorkflow: duplicate step ids are reported with the id", () => {
  const problems = problemsOf({ steps: [{ id: "a", agent: "echo" }, { id: "a", agent: "echo" }] });
  assertHas(problems, ['"a"', "id"], /duplicate/);
});

test("validateWorkflow: unknown dependencies name the step and the missing id", () => {
  const problems = problemsOf({ steps: [{ id: "a", agent: "echo" }, { id: "b", agent: "echo", dependsOn: ["a", "ghost"] }] });
  assertHas(problems, ['"b"', "dependsOn"], /ghost/);
  assert.equal(problems.length, 1, JSON.stringify(problems));
});

test("validateWorkflow: a step depending on itself is rejected", () => {
  const problems = problemsOf({ steps: [{ id: "loop", agent: "echo", dependsOn: ["loop"] }] });
  assertHas(problems, ['"loop"', "dependsOn"], /itself/);
});

test("validateWorkflow: a cycle is reported with its path", () => {
  // a depends on c, c on b, b on a: the run order a -> b -> c -> a never starts.
  const problems = problemsOf({
    steps: [
      { id: "a", agent: "echo", dependsOn: ["c"] },
      { id: "b", agent: "echo", dependsOn: ["a"] },
      { id: "c", agent: "echo", dependsOn: ["b"] },
      { id: "free", agent: "echo" },
    ],
  });
  const cycles = problems.filter((p) => /cycle/.test(p.message));
  assert.equal(cycles.length, 1, JSON.stringify(problems));
  assert.match(cycles[0]!.message, /a -> b -> c -> a/);
  assert.ok(cycles[0]!.where.includes("dependsOn"));
});

test("validateWorkflow: two separate cycles are both reported", () => {
  const problems = problemsOf({
    steps: [
      { id: "a", agent: "echo", dependsOn: ["b"] },
      { id: "b", agent: "echo", dependsOn: ["a"] },
      { id: "x", agent: "echo", dependsOn: ["y"] },
      { id: "y", agent: "echo", dependsOn: ["x"] },
    ],
  });
  const cycles = problems.filter((p) => /cycle/.test(p.message)).map((p) => p.message);
  assert.equal(cycles.length, 2, JSON.stringify(problems));
  assert.ok(cycles.some((m) => /a -> b -> a/.test(m)), cycles.join("\n"));
  assert.ok(cycles.some((m) => /x -> y -> x/.test(m)), cycles.join("\n"));
});

test("validateWorkflow: unknown agents are named with the step", () => {
  const problems = problemsOf({ steps: [{ id: "s1", agent: "teleport" }] });
  assertHas(problems, ['"s1"', "agent"], /teleport/);
});

test("validateWorkflow: an input over maxPayloadBytes is rejected, one at the limit is accepted", () => {
  // JSON of a string of n "x" is n + 2 bytes.
  const problems = problemsOf({ steps: [{ id: "big", agent: "echo", input: "x".repeat(99) }] });
  assertHas(problems, ['"big"', "input"], /maxPayloadBytes/);
  assert.doesNotThrow(() => validateWorkflow({ steps: [{ id: "fits", agent: "echo", input: "x".repeat(98) }] }, ctx));
});

test("validateWorkflow: multi-byte input is measured in bytes, not characters", () => {
  // 40 characters of "é" are 80 bytes of UTF-8 (+2 quotes): over a 60-byte limit although only 42 characters.
  const problems = problemsOf({ steps: [{ id: "utf", agent: "echo", input: "é".repeat(40) }] }, { ...ctx, maxPayloadBytes: 60 });
  assertHas(problems, ['"utf"', "input"], /maxPayloadBytes/);
});

test("validateWorkflow: unknown fields are rejected at the workflow and at the step, naming the field", () => {
  const problems = problemsOf({ colour: "red", steps: [{ id: "s1", agent: "echo", dependson: ["x"] }] });
  assertHas(problems, ["flow.json"], /colour/);
  assertHas(problems, ["steps[0]"], /dependson/);
});

test("validateWorkflow: a bad priority is rejected at the workflow and at the step", () => {
  const problems = problemsOf({ priority: "urgent", steps: [{ id: "s1", agent: "echo", priority: "top" }] });
  assert.ok(problems.some((p) => /(^|: )priority$/.test(p.where)), JSON.stringify(problems));
  assertHas(problems, ['"s1"', "priority"], /.+/);
});

test("validateWorkflow: retry.maxBackoffMs below retry.baseBackoffMs is rejected", () => {
  const problems = problemsOf({ steps: [{ id: "r", agent: "echo", retry: { baseBackoffMs: 500, maxBackoffMs: 100 } }] });
  assertHas(problems, ['"r"', "maxBackoffMs"], /baseBackoffMs/);
});

test("validateWorkflow: a workflow without steps is rejected", () => {
  const problems = problemsOf({ steps: [] });
  assertHas(problems, ["steps"], /step/);
});

test("validateWorkflow: the input schema of a built-in agent is checked", () => {
  const problems = problemsOf({ steps: [{ id: "nap", agent: "sleep", input: { ms: "long" } }] }, {
    ...ctx,
    inputSchema: (agent) => agent === "sleep"
      ? { safeParse: (x: unknown) => (typeof (x as { ms?: unknown })?.ms === "number"
        ? { success: true }
        : { success: false, error: { issues: [{ message: "ms must be a number", path: ["ms"] }] } }) }
      : undefined,
  });
  assertHas(problems, ['"nap"', "input.ms"], /ms must be a number/);
});

test("validateWorkflow: every problem comes back in one InvalidInputError", () => {
  const problems = problemsOf({
    priority: "urgent",
    surprise: true,
    steps: [
      { id: "a", agent: "echo", dependsOn: ["c"] },
      { id: "b", agent: "echo", dependsOn: ["a"], extra: 1 },
      { id: "c", agent: "echo", dependsOn: ["b"] },
      { id: "d", agent: "ghost-agent", dependsOn: ["d", "missing"], input: "y".repeat(500) },
      { id: "d", agent: "echo" },
    ],
  });
  assert.ok(problems.some((p) => /(^|: )priority$/.test(p.where)), "bad priority");
  assertHas(problems, ["flow.json"], /surprise/);
  assertHas(problems, ["steps[1]"], /extra/);
  assertHas(problems, ['"a"', "dependsOn"], /a -> b -> c -> a/);
  assertHas(problems, ['"d"', "agent"], /ghost-agent/);
  assertHas(problems, ['"d"', "dependsOn"], /itself/);
  assertHas(problems, ['"d"', "dependsOn"], /missing/);
  assertHas(problems, ['"d"', "input"], /maxPayloadBytes/);
  assertHas(problems, ['"d"', "id"], /duplicate/);
  assert.ok(problems.length >= 9, JSON.stringify(problems, null, 2));
});

test("validateWorkflow: the error message lists every problem", () => {
  try {
    validateWorkflow({ steps: [{ id: "a", agent: "nope1" }, { id: "b", agent: "nope2" }] }, ctx);
    assert.fail("should throw");
  } catch (error) {
    assert.ok(error instanceof InvalidInputError);
    assert.equal(error.problems.length, 2);
    assert.match(error.message, /nope1/);
    assert.match(error.message, /nope2/);
  }
});
