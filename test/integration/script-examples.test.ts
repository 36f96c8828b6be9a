import { test } from "node:test";
import assert from "node:assert/strict";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { PersistentScriptAgent } from "../../src/agents/persistent.js";
import { loadScriptAgents, type ScriptAgentConfig } from "../../src/agents/scripts.js";
import { validateWorkflow } from "../../src/dag/validate.js";
import type { StepResultMessage } from "../../src/pool/protocol.js";
import { runOneShot, type ScriptHooks } from "../../workers/script-runner.js";
import { REPO } from "../helpers.js";
import { request } from "../fixtures/scripts/helpers.js";

const limits = { maxPayloadBytes: 1024 * 1024, killGraceMs: 500 };

/** A root beside examples/, as `./relaymesh-data` would be, with examples/agents/scripts.json copied in. */
function exampleRoot(): { root: string; agents: Map<string, ScriptAgentConfig>; cleanup: () => void } {
  const root = mkdtempSync(join(REPO, ".relaymesh-data-test-"));
  mkdirSync(join(root, "agents"));
  copyFileSync(join(REPO, "examples", "agents", "scripts.json"), join(root, "agents", "scripts.json"));
  const agents = new Map(loadScriptAgents(root).map((a) => [a.id, a]));
  return { root, agents, cleanup: () => rmSync(root, { recursive: true, force: true }) };
}

/** Hooks over an in-memory kv, as the engine's fenced store would apply them. */
function kvHooks(kv: Map<string, unknown>, progress: string[] = []): ScriptHooks {
  return {
    signal: new AbortController().signal,
    heartbeat: () => {},
    progress: (_pct, message) => void progress.push(message ?? ""),
    checkpoint: async (key, value) => void kv.set(key, value),
  };
}

function output(result: StepResultMessage): any {
  assert.equal(result.type, "result", `expected a result, got ${JSON.stringify(result)}`);
  return JSON.parse((result as { outputJson: string }).outputJson);
}

test("examples/agents/scripts.json: copied into a root beside examples/, every command resolves to an existing file", () => {
  const { agents, cleanup } = exampleRoot();
  try {
    assert.deepEqual([...agents.keys()].sort(), ["py-upper", "slugify", "word-count"]);
    for (const agent of agents.values()) {
      assert.ok(existsSync(agent.command[1]!), `${agent.id}: ${agent.command[1]} exists`);
    }
    assert.equal(agents.get("py-upper")!.mode, "persistent");
    assert.equal(agents.get("py-upper")!.instances, 2);
  } finally {
    cleanup();
  }
});

test("examples/agents/word_count.py: checkpoints each document on fd 3; a retried attempt resumes from kv", async () => {
  const { agents, cleanup } = exampleRoot();
  try {
    const config = agents.get("word-count")!;
    const input = { documents: ["one two", "three three three", "four", "five five"], crashAfter: 2 };
    const kv = new Map<string, unknown>();
    const progress: string[] = [];
    const first = await runOneShot(config, request({ stepId: "count", attempt: 1, input, kv: {} }), kvHooks(kv, progress), limits);
    assert.equal(first.type, "error");
    assert.match((first as { error: { message: string } }).error.message, /exited with code 75.*simulated crash after 2 documents/s);
    assert.deepEqual((kv.get("count.progress") as { done: number }).done, 2);
    assert.deepEqual(progress, ["1/4 documents", "2/4 documents"]);
    const second = await runOneShot(config, request({ stepId: "count", attempt: 2, input, kv: Object.fromEntries(kv) }), kvHooks(kv), limits);
    const out = output(second);
    assert.equal(out.resumedFrom, 2);
    assert.equal(out.words, 8);
    assert.deepEqual(out.top[0], ["three", 3]);
    assert.equal((kv.get("count.progress") as { done: number }).done, 4);
  } finally {
    cleanup();
  }
});

test("examples/workflows/scripts.json: validates against the example agents and runs through them in order", async () => {
  const { agents, cleanup } = exampleRoot();
  const upper = new PersistentScriptAgent(agents.get("py-upper")!, limits);
  try {
    const spec = validateWorkflow(JSON.parse(readFileSync(join(REPO, "examples", "workflows", "scripts.json"), "utf8")), {
      source: "examples/workflows/scripts.json", knownAgents: new Set(agents.keys()), maxPayloadBytes: limits.maxPayloadBytes,
    });
    const outputs: Record<string, unknown> = {};
    const kv = new Map<string, unknown>();
    for (const step of spec.steps) {
      const deps = Object.fromEntries((step.dependsOn ?? []).map((d) => [d, outputs[d]]));
      const config = agents.get(step.agent)!;
      let result: StepResultMessage | undefined;
      for (let attempt = 1; attempt <= 3 && result?.type !== "result"; attempt++) {
        const req = request({ stepId: step.id, attempt, input: step.input, deps, kv: Object.fromEntries(kv) });
        result = config.mode === "persistent" ? await upper.run(req, kvHooks(kv)) : await runOneShot(config, req, kvHooks(kv), limits);
      }
      outputs[step.id] = output(result!);
    }
    assert.equal((outputs.count as { resumedFrom: number }).resumedFrom, 2);
    assert.deepEqual(outputs.slug, { title: "Durable Workflows in Any Language!", slug: "durable-workflows-in-any-language" });
    const shout = outputs.shout as { upper: unknown; deps: { slug: { slug: string } } };
    assert.deepEqual(shout.upper, { headline: "WORD COUNT DONE" });
    assert.equal(shout.deps.slug.slug, "DURABLE-WORKFLOWS-IN-ANY-LANGUAGE");
  } finally {
    await upper.close();
    cleanup();
  }
});

test("examples/agents/persistent_upper.py: 2 instances serve 1,000 concurrent requests", async () => {
  const { agents, cleanup } = exampleRoot();
  const upper = new PersistentScriptAgent(agents.get("py-upper")!, limits);
  try {
    const results = await Promise.all(Array.from({ length: 1_000 }, (_, i) =>
      upper.run(request({ input: { word: `w${i}x` }, deps: {} }), kvHooks(new Map()))));
    results.forEach((r, i) => assert.deepEqual(output(r), { upper: { word: `W${i}X` }, deps: {} }));
  } finally {
    await upper.close();
    cleanup();
  }
});
