import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { RelayMesh } from "../../src/index.js";
import { findCyclePaths, validateWorkflow } from "../../src/dag/validate.js";
import { InvalidInputError } from "../../src/errors.js";
import { MAX_JSON_DEPTH } from "../../src/model/problems.js";
import { cli, tempRoot } from "../helpers.js";

const HOSTILE_IDS = ["__proto__", "constructor", "toString", "hasOwnProperty", "prototype", "valueOf", "__defineGetter__"];

/** A workflow whose steps are named by hostile ids, each depending on the one before. */
function hostileFlow() {
  return {
    steps: HOSTILE_IDS.map((id, i) => ({ id, agent: i === 0 ? "echo" : "collect", input: { [id]: i }, ...(i > 0 ? { dependsOn: [HOSTILE_IDS[i - 1]!] } : {}) })),
  };
}

function prototypeKeys(): string[] {
  return Object.getOwnPropertyNames(Object.prototype).sort();
}

test("hostile ids: steps named __proto__, constructor, toString… run through mesh.submitWorkflow, leave Object.prototype alone, later submissions still work", async (t) => {
  const before = prototypeKeys();
  const { root, cleanup } = tempRoot();
  t.after(cleanup);
  const mesh = await RelayMesh.open({ root, concurrency: 4, pollIntervalMs: 20 });
  t.after(() => mesh.close());
  const { taskId } = await mesh.submitWorkflow(hostileFlow());
  const task = await mesh.waitFor(taskId, { timeoutMs: 20_000 });
  assert.equal(task.status, "SUCCESS", JSON.stringify(task.steps.map((s) => [s.stepId, s.status, s.error])));
  const last = task.steps.find((s) => s.stepId === "__defineGetter__")!;
  assert.deepEqual(Object.keys((last.output as { deps: object }).deps), ["valueOf"]);
  assert.deepEqual(prototypeKeys(), before);
  assert.equal(({} as Record<string, unknown>).b, undefined);
  const again = await mesh.submitWorkflow({ steps: [{ id: "a", agent: "echo" }, { id: "b", agent: "collect", dependsOn: ["a"] }] });
  assert.equal((await mesh.waitFor(again.taskId, { timeoutMs: 10_000 })).status, "SUCCESS");
});

test("hostile ids: the CLI submits them (exit 0) and the inbox moves the file to done/ while the next valid file is submitted too", async (t) => {
  const { root, cleanup } = tempRoot();
  t.after(cleanup);
  const file = join(root, "hostile.json");
  writeFileSync(file, JSON.stringify(hostileFlow()));
  const r = await cli(["submit-workflow", "--file", file, "--root", root, "--json"]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.json().steps, HOSTILE_IDS.length);
  mkdirSync(join(root, "inbox", "normal"), { recursive: true });
  writeFileSync(join(root, "inbox", "normal", "1-hostile.json"), JSON.stringify({ ...hostileFlow(), name: "again" }));
  writeFileSync(join(root, "inbox", "normal", "2-valid.json"), JSON.stringify({ steps: [{ id: "a", agent: "echo" }] }));
  const ingest = await cli(["ingest", "--root", root, "--json"]);
  assert.equal(ingest.code, 0, ingest.stderr);
  assert.deepEqual(readdirSync(join(root, "inbox", "done")).sort(), ["1-hostile.json", "2-valid.json"]);
  assert.deepEqual(readdirSync(join(root, "inbox", "dead")), []);
  const worker = await cli(["worker", "--once", "--root", root, "--json"]);
  assert.equal(worker.code, 0, worker.stderr);
  assert.equal(worker.json().failed, 0);
  assert.equal(worker.json().succeeded, 2 * HOSTILE_IDS.length + 1);
});

test("findCyclePaths: keyed safely and iterative — a 20,000-step chain, a cycle through __proto__", () => {
  const chain = Array.from({ length: 20_000 }, (_, i) => ({ id: `s${i}`, dependsOn: i ? [`s${i - 1}`] : [] }));
  assert.deepEqual(findCyclePaths({ steps: chain }), []);
  const ring = [...chain.slice(1), { id: "s0", dependsOn: ["s19999"] }];
  const [cycle] = findCyclePaths({ steps: ring });
  assert.equal(cycle!.length, 20_001);
  assert.deepEqual(findCyclePaths({ steps: [{ id: "__proto__", dependsOn: ["constructor"] }, { id: "constructor", dependsOn: ["__proto__"] }] }),
    [["__proto__", "constructor", "__proto__"]]);
});

test("validateWorkflow: an input nested past the limit is refused naming the step and the limit (no stack overflow)", () => {
  const deep = JSON.parse(`${"[".repeat(5_000)}1${"]".repeat(5_000)}`) as unknown;
  const ctx = { source: "flow.json", knownAgents: new Set(["echo"]), maxPayloadBytes: 10_000_000 };
  assert.throws(() => validateWorkflow({ steps: [{ id: "deep", agent: "echo", input: deep }] }, ctx), (error: unknown) => {
    assert.ok(error instanceof InvalidInputError);
    assert.match(error.message, new RegExp(`step "deep"\\.input: input nests deeper than ${MAX_JSON_DEPTH} levels`));
    return true;
  });
  const ok = JSON.parse(`${"[".repeat(MAX_JSON_DEPTH - 1)}{"a":1}${"]".repeat(MAX_JSON_DEPTH - 1)}`) as unknown;
  validateWorkflow({ steps: [{ id: "ok", agent: "echo", input: ok }] }, ctx);
});

test("deep workflows: a 10,000-step chain and a 1,000-wide fan-out run to SUCCESS", async (t) => {
  const { root, cleanup } = tempRoot();
  t.after(cleanup);
  // Durability normal: this test measures depth, not fsync.
  const mesh = await RelayMesh.open({ root, concurrency: 16, pollIntervalMs: 20, settings: { durability: "normal" } });
  t.after(() => mesh.close());
  const chain = Array.from({ length: 10_000 }, (_, i) => ({ id: `s${i}`, agent: "echo", input: i, ...(i ? { dependsOn: [`s${i - 1}`] } : {}) }));
  const fan = [{ id: "root", agent: "echo", input: 0 }, ...Array.from({ length: 1_000 }, (_, i) => ({ id: `f${i}`, agent: "echo", input: i, dependsOn: ["root"] }))];
  fan.push({ id: "join", agent: "collect", input: 0, dependsOn: fan.slice(1).map((s) => s.id) });
  const a = await mesh.submitWorkflow({ steps: chain });
  const b = await mesh.submitWorkflow({ steps: fan });
  const fanned = await mesh.waitFor(b.taskId, { timeoutMs: 120_000 });
  assert.equal(fanned.status, "SUCCESS");
  assert.equal(Object.keys((fanned.steps.find((s) => s.stepId === "join")!.output as { deps: object }).deps).length, 1_000);
  const chained = await mesh.waitFor(a.taskId, { timeoutMs: 240_000 });
  assert.equal(chained.status, "SUCCESS");
  assert.equal(chained.steps.find((s) => s.stepId === "s9999")!.output, 9_999);
});
