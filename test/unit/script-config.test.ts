import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadScriptAgents } from "../../src/agents/scripts.js";
import { ErrorCode, InvalidInputError, isRelayMeshError } from "../../src/errors.js";
import { tempRoot } from "../helpers.js";

function withRoot(files: Record<string, string>, fn: (root: string) => void): void {
  const { root, cleanup } = tempRoot("relaymesh-scripts-");
  try {
    for (const [path, text] of Object.entries(files)) {
      mkdirSync(join(root, path, ".."), { recursive: true });
      writeFileSync(join(root, path), text);
    }
    fn(root);
  } finally {
    cleanup();
  }
}

function problemsOf(fn: () => unknown): { where: string; message: string }[] {
  try {
    fn();
  } catch (error) {
    assert.ok(isRelayMeshError(error) && error instanceof InvalidInputError, `expected InvalidInputError, got ${String(error)}`);
    assert.equal(error.code, ErrorCode.INVALID_INPUT);
    return error.problems;
  }
  assert.fail("expected loadScriptAgents to throw");
}

test("loadScriptAgents: a missing file means no script agents", () => {
  withRoot({}, (root) => assert.deepEqual(loadScriptAgents(root), []));
});

test("loadScriptAgents: resolves paths against the root, keeps bare program names and flags, fills defaults", () => {
  const scripts = {
    agents: [
      { id: "py", command: ["python3", "agents/upper.py", "-u", "plain-word", "missing.py"], timeoutMs: 1000 },
      { id: "local", command: ["bin/run.sh", "--x"], timeoutMs: 5, env: { A: "1" }, concurrency: 2, cwd: "work" },
      { id: "keep", command: ["../outside/tool.py"], timeoutMs: 1, mode: "persistent", instances: 3 },
      { id: "pers", command: ["node", "/abs/agent.mjs"], timeoutMs: 1, mode: "persistent" },
    ],
  };
  withRoot({ "agents/scripts.json": JSON.stringify(scripts), "agents/upper.py": "", "bin/run.sh": "" }, (root) => {
    const agents = loadScriptAgents(root);
    assert.deepEqual(agents, [
      { id: "py", command: ["python3", join(root, "agents/upper.py"), "-u", "plain-word", "missing.py"], timeoutMs: 1000, mode: "oneshot", instances: 1 },
      { id: "local", command: [join(root, "bin/run.sh"), "--x"], timeoutMs: 5, mode: "oneshot", instances: 1, env: { A: "1" }, concurrency: 2, cwd: join(root, "work") },
      { id: "keep", command: [join(root, "../outside/tool.py")], timeoutMs: 1, mode: "persistent", instances: 3 },
      { id: "pers", command: ["node", "/abs/agent.mjs"], timeoutMs: 1, mode: "persistent", instances: 1 },
    ]);
  });
});

test("loadScriptAgents: invalid JSON names the file", () => {
  withRoot({ "agents/scripts.json": "{ nope" }, (root) => {
    const problems = problemsOf(() => loadScriptAgents(root));
    assert.equal(problems.length, 1);
    assert.equal(problems[0]!.where, join(root, "agents", "scripts.json"));
    assert.match(problems[0]!.message, /invalid JSON/);
  });
});

test("loadScriptAgents: schema problems name the file, the entry (index and id) and the field", () => {
  const scripts = {
    agents: [
      { id: "ok", command: ["true"], timeoutMs: 1 },
      { id: "bad", command: [], timeoutMs: 0, colour: "red" },
      { id: "one", command: ["x"], timeoutMs: 1, instances: 2 },
      { id: "mode", command: ["x"], timeoutMs: 1.5, mode: "forever" },
    ],
  };
  withRoot({ "agents/scripts.json": JSON.stringify(scripts) }, (root) => {
    const file = join(root, "agents", "scripts.json");
    const problems = problemsOf(() => loadScriptAgents(root));
    const where = problems.map((p) => p.where);
    assert.ok(where.includes(`${file}: agents[1] (id "bad").command`), where.join("\n"));
    assert.ok(where.includes(`${file}: agents[1] (id "bad").timeoutMs`));
    assert.ok(problems.some((p) => p.where === `${file}: agents[1] (id "bad")` && /unknown field "colour"/.test(p.message)));
    const instances = problems.find((p) => p.where === `${file}: agents[2] (id "one").instances`);
    assert.ok(instances, where.join("\n"));
    assert.match(instances.message, /agent "one".*"mode": "persistent"/);
    assert.ok(where.includes(`${file}: agents[3] (id "mode").mode`));
    assert.ok(where.includes(`${file}: agents[3] (id "mode").timeoutMs`));
  });
});

test("loadScriptAgents: duplicate ids are a problem naming both entries", () => {
  const scripts = { agents: [{ id: "a", command: ["x"], timeoutMs: 1 }, { id: "b", command: ["x"], timeoutMs: 1 }, { id: "a", command: ["y"], timeoutMs: 1 }] };
  withRoot({ "agents/scripts.json": JSON.stringify(scripts) }, (root) => {
    const problems = problemsOf(() => loadScriptAgents(root));
    assert.deepEqual(problems, [{ where: `${join(root, "agents", "scripts.json")}: agents[2] (id "a").id`, message: "duplicate id, already used by agents[0]" }]);
  });
});

test("loadScriptAgents: the top level must be { agents: [...] } and nothing else", () => {
  withRoot({ "agents/scripts.json": JSON.stringify({ agents: [], extra: 1 }) }, (root) => {
    const problems = problemsOf(() => loadScriptAgents(root));
    assert.match(problems[0]!.message, /unknown field "extra"/);
  });
  withRoot({ "agents/scripts.json": "[]" }, (root) => {
    assert.ok(problemsOf(() => loadScriptAgents(root)).length > 0);
  });
});
