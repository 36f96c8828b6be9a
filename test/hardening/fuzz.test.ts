/**
 * Property-based fuzzing of everything a user hands RelayMesh as files or arguments: valid
 * workflow, settings, scripts.json and retry-policies.json files mutated at random, and CLI
 * argument lists. Invariants: a file gives exit 0 or 2 (never 1, never a stack trace); a 2 is one
 * line naming the file, writes nothing, and leaves every prototype alone; the process still
 * accepts a valid submission afterwards. Seeded; RELAYMESH_FUZZ_RUNS (default 150) and
 * RELAYMESH_FUZZ_SEED run it longer or elsewhere. Failures it found stay below as regressions.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import { RelayMesh } from "../../src/index.js";
import { failureReport } from "../../src/cli/errors.js";
import { preflightWorkflow, readWorkflowFile } from "../../src/cli/preflight.js";
import { cli, tempRoot } from "../helpers.js";

const RUNS = Number(process.env.RELAYMESH_FUZZ_RUNS ?? 150);
const SEED = Number(process.env.RELAYMESH_FUZZ_SEED ?? 20_261_201);

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type Kind = "workflow" | "settings" | "scripts" | "policies";

const VALID: Record<Kind, Json> = {
  workflow: {
    name: "fuzz", priority: "normal", failFast: false, idempotencyKey: "k",
    steps: [
      { id: "a", agent: "echo", input: { x: [1, "two", null] }, timeoutMs: 1_000, retry: { maxAttempts: 2, baseBackoffMs: 10, maxBackoffMs: 100 } },
      { id: "b", agent: "collect", dependsOn: ["a"], priority: "high" },
      { id: "c", agent: "sleep", input: { ms: 1 }, dependsOn: ["a"] },
      { id: "d", agent: "fail", input: { message: "m" }, dependsOn: ["b", "c"] },
      { id: "e", agent: "sh-cat", input: "text", dependsOn: ["a"] },
    ],
  },
  settings: { leaseTimeoutMs: 30_000, suspectAfterMs: 15_000, deadAfterMs: 45_000, maxAttempts: 3, baseBackoffMs: 1_000, maxBackoffMs: 60_000, claimPolicy: "capacity", durability: "full", maxPayloadBytes: 1_048_576 },
  scripts: { agents: [{ id: "sh-cat", command: ["sh", "-c", "cat"], timeoutMs: 1_000, env: { A: "1" }, concurrency: 2 }] },
  policies: { agents: [{ id: "echo", maxAttempts: 2, baseBackoffMs: 10, maxBackoffMs: 100 }] },
};

const FILES: Record<Kind, string> = {
  workflow: "flow.json", settings: "relaymesh-settings.json", scripts: "agents/scripts.json", policies: "agents/retry-policies.json",
};

const HOSTILE_KEYS = ["__proto__", "constructor", "toString", "prototype", "hasOwnProperty", "valueOf", "", " ", "a.b", "then"];
const hostileValue: fc.Arbitrary<Json> = fc.oneof(
  fc.constantFrom<Json>(2 ** 31, 2 ** 31 - 1, -1, 0, 0.5, 1e308, Number.MAX_SAFE_INTEGER + 2, -0, "", "__proto__", "x".repeat(5_000), null, true, [], {}, "high", "echo"),
  fc.constantFrom(...HOSTILE_KEYS),
  fc.jsonValue({ maxDepth: 3 }) as fc.Arbitrary<Json>,
);

/** One edit of a document: at the path picked by `at` (an index into its paths, modulo). */
type Mutation =
  | { kind: "set"; at: number; value: Json }
  | { kind: "delete"; at: number }
  | { kind: "add-key"; at: number; key: string; value: Json }
  | { kind: "rename-step"; at: number; id: string }
  | { kind: "nest"; at: number; depth: number };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant("set" as const), at: fc.nat(), value: hostileValue }),
  fc.record({ kind: fc.constant("delete" as const), at: fc.nat() }),
  fc.record({ kind: fc.constant("add-key" as const), at: fc.nat(), key: fc.oneof(fc.constantFrom(...HOSTILE_KEYS), fc.string({ maxLength: 8 })), value: hostileValue }),
  fc.record({ kind: fc.constant("rename-step" as const), at: fc.nat(), id: fc.oneof(fc.constantFrom(...HOSTILE_KEYS), fc.string({ maxLength: 6 })) }),
  fc.record({ kind: fc.constant("nest" as const), at: fc.nat(), depth: fc.oneof(fc.integer({ min: 1, max: 50 }), fc.constantFrom(999, 1_001, 5_000)) }),
);

/** Raw-text damage applied after the edits: none, a cut, or a stray character. */
const damage = fc.oneof(
  { weight: 6, arbitrary: fc.constant(null) },
  { weight: 1, arbitrary: fc.record({ cut: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ at: fc.nat(), char: fc.constantFrom("{", "}", ",", "\"", "\u0000", "\\") }) },
);

export interface Case { kind: Kind; mutations: Mutation[]; damage: { cut: number } | { at: number; char: string } | null }
const fuzzCase: fc.Arbitrary<Case> = fc.record({
  kind: fc.constantFrom<Kind>("workflow", "workflow", "settings", "scripts", "policies"),
  mutations: fc.array(mutation, { minLength: 1, maxLength: 3 }),
  damage,
});

/** Every container path of a document (objects and arrays), iteratively. */
function paths(doc: Json): (string | number)[][] {
  const out: (string | number)[][] = [];
  const stack: [(string | number)[], Json][] = [[[], doc]];
  while (stack.length > 0) {
    const [path, v] = stack.pop()!;
    out.push(path);
    if (Array.isArray(v)) v.forEach((c, i) => stack.push([[...path, i], c]));
    else if (v && typeof v === "object") for (const k of Object.keys(v)) stack.push([[...path, k], v[k]!]);
  }
  return out;
}

function getAt(doc: Json, path: (string | number)[]): Json {
  let v: Json = doc;
  for (const k of path) v = (v as Record<string, Json>)[k as string] as Json;
  return v;
}

/** Sets an own property (never the prototype, whatever the key). */
function put(target: Json, key: string | number, value: Json): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

function apply(doc: Json, m: Mutation): Json {
  const all = paths(doc);
  const path = all[m.at % all.length]!;
  if (path.length === 0 && m.kind !== "add-key") return m.kind === "set" ? clone(m.value) : m.kind === "nest" ? nest(doc, m.depth) : doc;
  const parent = path.length > 0 ? getAt(doc, path.slice(0, -1)) : null;
  const key = path[path.length - 1]!;
  switch (m.kind) {
    case "set": put(parent, key, clone(m.value)); break;
    case "delete": if (Array.isArray(parent)) parent.splice(key as number, 1); else delete (parent as Record<string, Json>)[key as string]; break;
    case "nest": put(parent, key, nest(getAt(doc, path), m.depth)); break;
    case "add-key": {
      const target = getAt(doc, path);
      if (target && typeof target === "object" && !Array.isArray(target)) put(target, m.key, clone(m.value));
      break;
    }
    case "rename-step": {
      const steps = (doc as { steps?: Json }).steps;
      if (!Array.isArray(steps) || steps.length === 0) break;
      const step = steps[m.at % steps.length] as { id?: Json };
      if (!step || typeof step !== "object") break;
      const old = step.id;
      put(step as Json, "id", m.id);
      for (const s of steps) {
        const deps = (s as { dependsOn?: Json })?.dependsOn;
        if (Array.isArray(deps)) deps.forEach((d, i) => { if (d === old) deps[i] = m.id; });
      }
      break;
    }
  }
  return doc;
}

/** The mutation's values are the case's own: the document gets copies, so later edits never change the case. */
function clone(value: Json): Json {
  return structuredClone(value);
}

function nest(value: Json, depth: number): Json {
  let v = value;
  for (let i = 0; i < depth; i++) v = [v];
  return v;
}

/** The text of the case's file: the valid document, edited, serialised, then maybe damaged. */
export function render(c: Case): string {
  let doc = JSON.parse(JSON.stringify(VALID[c.kind])) as Json;
  for (const m of c.mutations) doc = apply(doc, m);
  let text: string;
  try {
    text = JSON.stringify(doc) ?? "null";
  } catch {
    text = "[".repeat(5_000); // deeper than JSON.stringify goes: invalid JSON of that shape
  }
  if (c.damage && "cut" in c.damage) text = text.slice(0, c.damage.cut % (text.length + 1));
  else if (c.damage) { const at = c.damage.at % (text.length + 1); text = text.slice(0, at) + c.damage.char + text.slice(at); }
  return text;
}

function writeRoot(root: string, files: Partial<Record<Kind, string>>): void {
  mkdirSync(join(root, "agents"), { recursive: true });
  for (const kind of Object.keys(FILES) as Kind[]) writeFileSync(join(root, FILES[kind]), files[kind] ?? JSON.stringify(VALID[kind]));
}

/** Every file under `dir` with its size: what "nothing written" compares. */
function listing(dir: string): string[] {
  const out: string[] = [];
  const stack = [dir];
  while (stack.length > 0) {
    const d = stack.pop()!;
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      const st = statSync(p);
      if (st.isDirectory()) stack.push(p); else out.push(`${p} ${st.size}`);
    }
  }
  return out.sort();
}

function prototypes(): string {
  return [Object.prototype, Array.prototype, Function.prototype, String.prototype]
    .map((p) => Object.getOwnPropertyNames(p).sort().join(",")).join("|") + `|${Object.getPrototypeOf({}) === Object.prototype}`;
}

/** Checks one case the way the CLI handles it (read, validate against the root), in this process. */
function checkInProcess(root: string, c: Case, text: string): "accepted" | "refused" {
  writeRoot(root, { [c.kind]: text });
  const before = listing(root);
  const file = join(root, FILES[c.kind]);
  try {
    const raw = readWorkflowFile(join(root, FILES.workflow));
    preflightWorkflow({ root }, raw, join(root, FILES.workflow), {});
    return "accepted";
  } catch (error) {
    const report = failureReport(error);
    assert.equal(report.exitCode, 2, `exit ${report.exitCode} for ${JSON.stringify(c)}: ${(error as Error)?.stack ?? String(error)}`);
    assert.doesNotMatch(report.line, /\n/);
    // The damaged file is named, or the workflow when the damage shows there (an agent renamed in scripts.json).
    assert.ok(report.line.includes(file) || report.line.includes(join(root, FILES.workflow)), `the error names ${file}: ${report.line}`);
    assert.notEqual(report.document.error.code, null);
    assert.deepEqual(listing(root), before, "nothing written on exit 2");
    return "refused";
  }
}

test("fuzz (in process): mutated workflow, settings, scripts.json and retry-policies.json files give exit 0 or 2, one line naming the file, nothing written, prototypes intact", async (t) => {
  const { root, cleanup } = tempRoot();
  t.after(cleanup);
  const prototypesBefore = prototypes();
  const accepting = join(root, "engine");
  writeRoot(accepting, {});
  const mesh = await RelayMesh.open({ root: accepting, work: false });
  t.after(() => mesh.close());
  let tasks = 0;
  const counts = { accepted: 0, refused: 0 };
  await fc.assert(fc.asyncProperty(fuzzCase, async (c) => {
    const dir = join(root, "case");
    rmSync(dir, { recursive: true, force: true });
    const text = render(c);
    counts[checkInProcess(dir, c, text)]++;
    assert.equal(prototypes(), prototypesBefore, `prototypes changed by ${JSON.stringify(c)}`);
    if (c.kind !== "workflow") return;
    // The embedding API takes the same document: accepted or refused with exit status 2, never written when refused.
    let doc: unknown;
    try { doc = JSON.parse(text); } catch { return; }
    try {
      const r = await mesh.submitWorkflow(doc, { idempotencyKey: `fuzz-${tasks}-${counts.accepted}-${counts.refused}` });
      if (r.created) tasks++;
    } catch (error) {
      assert.equal(failureReport(error).exitCode, 2, (error as Error)?.stack ?? String(error));
    }
    assert.equal(prototypes(), prototypesBefore, `prototypes changed by submitWorkflow of ${JSON.stringify(c)}`);
    assert.equal((await mesh.listTasks({ limit: 1 })).total, tasks);
  }), { seed: SEED, numRuns: RUNS, endOnFailure: true });
  assert.ok(counts.accepted > 0 && counts.refused > 0, JSON.stringify(counts));
  // Still accepting valid work afterwards.
  const ok = await mesh.submitWorkflow(VALID.workflow);
  assert.equal(ok.created, true);
  assert.equal(checkInProcess(join(root, "final"), { kind: "workflow", mutations: [], damage: null }, JSON.stringify(VALID.workflow)), "accepted");
});

test("fuzz (processes): submit-workflow with a mutated file exits 0 or 2 with one stderr line; a 2 writes nothing; a valid file is accepted after", async (t) => {
  const { root, cleanup } = tempRoot();
  t.after(cleanup);
  await fc.assert(fc.asyncProperty(fuzzCase, async (c) => {
    const dir = join(root, "case");
    rmSync(dir, { recursive: true, force: true });
    writeRoot(dir, { [c.kind]: render(c) });
    const before = listing(dir);
    const r = await cli(["submit-workflow", "--file", join(dir, FILES.workflow), "--root", dir, "--json"]);
    assert.ok(r.code === 0 || r.code === 2, `exit ${r.code} for ${JSON.stringify(c)}: ${r.stderr}`);
    assert.doesNotMatch(r.stderr, /^\s+at /m, "no stack trace");
    const doc = r.json<{ error?: { code: string | null } }>();
    if (r.code === 2) {
      assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
      assert.ok(r.stderr.includes(join(dir, FILES[c.kind])) || r.stderr.includes(join(dir, FILES.workflow)), r.stderr);
      assert.notEqual(doc.error?.code ?? null, null);
      assert.deepEqual(listing(dir), before, "nothing written on exit 2");
    }
    writeRoot(dir, {});
    const valid = await cli(["submit-workflow", "--file", join(dir, FILES.workflow), "--root", dir, "--json", "--idempotency-key", "after"]);
    assert.equal(valid.code, 0, valid.stderr);
  }), { seed: SEED, numRuns: Math.max(6, Math.round(RUNS / 25)), endOnFailure: true });
});

const COMMANDS = ["submit", "submit-workflow", "tasks", "task", "workflow", "cancel", "replay", "replay-batch", "purge", "stats", "agents",
  "members", "audit-query", "audit-tail", "lease-conflicts", "ownership-events", "settings-history", "kv", "mesh-prune", "cluster-state", "nope"];
const OPTIONS = ["--agent", "--input", "--priority", "--idempotency-key", "--traceparent", "--file", "--status", "--limit", "--offset", "--mode",
  "--reason", "--namespace", "--from", "--to", "--lines", "--since-hours", "--older-than-ms", "--done-retention-days", "--bogus", "--once"];
const ARG_VALUES = ["echo", "1", "-1", "0", "2147483648", "1e400", "{bad", "\"s\"", "[]", "__proto__", "high", "soft", "hard", "DEAD_LETTER",
  "", "--json", "x".repeat(300), "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"];

test("fuzz (processes): random argument lists print at most one stderr line and, under --json, one document with a non-null error code", async (t) => {
  const { root, cleanup } = tempRoot();
  t.after(cleanup);
  await fc.assert(fc.asyncProperty(
    fc.constantFrom(...COMMANDS),
    fc.array(fc.oneof(fc.constantFrom(...OPTIONS), fc.constantFrom(...ARG_VALUES)), { maxLength: 5 }),
    async (command, rest) => {
      const r = await cli([command, ...rest, "--root", root, "--json"], { timeoutMs: 30_000 });
      assert.doesNotMatch(r.stderr, /^\s+at /m, `no stack trace: ${command} ${rest.join(" ")}\n${r.stderr}`);
      assert.ok(r.code !== null && r.code <= 3, `exit ${r.code}`);
      const doc = r.json<{ error?: { code: string | null; message: string } }>();
      if (r.code !== 0 && doc.error) {
        assert.equal(r.stderr.trim().split("\n").length, 1, `${command} ${rest.join(" ")}: ${r.stderr}`);
        assert.match(doc.error.code ?? "", /^RELAYMESH_ERR_/);
      }
    },
  ), { seed: SEED, numRuns: Math.max(10, Math.round(RUNS / 15)), endOnFailure: true });
  assert.equal((await cli(["submit", "--agent", "echo", "--input", "1", "--root", root])).code, 0, "still accepts a valid submission");
});

/** Failures found by the fuzzers and by hand (issue 7), kept as fixed cases. */
const REGRESSIONS: { name: string; kind: Kind; text: string; expect: "accepted" | "refused" }[] = [
  { name: "step id __proto__ with a dependent", kind: "workflow", expect: "accepted",
    text: JSON.stringify({ steps: [{ id: "__proto__", agent: "echo" }, { id: "b", agent: "collect", dependsOn: ["__proto__"] }] }) },
  { name: "step ids toString / hasOwnProperty / constructor", kind: "workflow", expect: "accepted",
    text: JSON.stringify({ steps: [{ id: "toString", agent: "echo" }, { id: "hasOwnProperty", agent: "echo", dependsOn: ["toString"] }, { id: "constructor", agent: "echo", dependsOn: ["hasOwnProperty"] }] }) },
  { name: "timeoutMs past 2^31-1", kind: "workflow", expect: "refused", text: JSON.stringify({ steps: [{ id: "a", agent: "echo", timeoutMs: 2 ** 31 }] }) },
  { name: "input nested 5,000 levels", kind: "workflow", expect: "refused", text: `{"steps":[{"id":"a","agent":"echo","input":${"[".repeat(5_000)}${"]".repeat(5_000)}}]}` },
  { name: "3,000-step chain", kind: "workflow", expect: "accepted",
    text: JSON.stringify({ steps: Array.from({ length: 3_000 }, (_, i) => ({ id: `s${i}`, agent: "echo", ...(i ? { dependsOn: [`s${i - 1}`] } : {}) })) }) },
  { name: "fail takes any input", kind: "workflow", expect: "accepted", text: JSON.stringify({ steps: [{ id: "a", agent: "fail", input: 1 }, { id: "b", agent: "fail", input: { why: "x" } }] }) },
  { name: "settings key __proto__", kind: "settings", expect: "refused", text: "{\"__proto__\":{\"polluted\":1}}" },
  { name: "settings leaseTimeout past the timer limit", kind: "settings", expect: "refused", text: JSON.stringify({ suspectAfterMs: 2 ** 31 }) },
  { name: "scripts.json agent timeoutMs past the timer limit", kind: "scripts", expect: "refused",
    text: JSON.stringify({ agents: [{ id: "sh-cat", command: ["sh"], timeoutMs: 2 ** 31 }] }) },
  { name: "retry policy for agent constructor", kind: "policies", expect: "refused", text: JSON.stringify({ agents: [{ id: "constructor", maxAttempts: 1 }] }) },
];

test("fuzz regressions: each case found once stays fixed", (t) => {
  const { root, cleanup } = tempRoot();
  t.after(cleanup);
  const before = prototypes();
  for (const r of REGRESSIONS) {
    const dir = join(root, "r");
    rmSync(dir, { recursive: true, force: true });
    assert.equal(checkInProcess(dir, { kind: r.kind, mutations: [], damage: null }, r.text), r.expect, r.name);
    assert.equal(prototypes(), before, r.name);
  }
});
