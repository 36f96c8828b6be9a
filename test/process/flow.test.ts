// Time and flow control across worker processes sharing one store (a SQLite root, and a
// PostgreSQL schema when RELAYMESH_PG_URL is set): each mechanism is checked from what the
// agents logged (with timestamps) and what the store recorded.
import { after, beforeEach, describe, test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { RelayMesh } from "../../src/index.js";
import { cli as runCli, spawnCli as spawnBin, tempRoot, waitUntil, type Spawned, TEST_STORE } from "../helpers.js";
import { PG_URL, pgSchemaUrl } from "../store/pg.js";
import { prepareRoot, statusCounts } from "./setup.js";

/** The store the processes of one test share: undefined for SQLite in the root. */
let store: string | undefined;
const withStore = (args: string[]) => (store === undefined ? args : [...args, "--store", store]);
const cli = (args: string[]) => runCli(withStore(args));
const spawnCli = (args: string[], options: { env?: NodeJS.ProcessEnv } = {}) => spawnBin(withStore(args), options);
const reader = (root: string) => RelayMesh.open({ root, work: false, ...(store !== undefined ? { store } : {}) });

interface LogLine { kind: "start" | "end"; at: number; taskId: string; pid?: string; deadline?: string }

function readLog(path: string): LogLine[] {
  if (!existsSync(path)) return [];
  return readFileSync(path, "utf8").trim().split("\n").filter(Boolean).map((l) => {
    const [kind, at, taskId, pid, deadline] = l.split(" ");
    return { kind: kind as LogLine["kind"], at: Number(at), taskId: taskId!, pid, deadline };
  });
}

/** Starts `n` worker processes on `root`; they are killed when the test ends. */
function workers(t: TestContext, root: string, log: string, n: number, concurrency = 4): Spawned[] {
  const ws = Array.from({ length: n }, (_, i) => spawnCli(["worker", "--root", root, "--node-id", `n${i}`, "--concurrency", String(concurrency), "--json"], {
    env: { RELAYMESH_TEST_LOG: log },
  }));
  t.after(() => { for (const w of ws) w.child.kill("SIGKILL"); });
  return ws;
}

async function stop(ws: Spawned[]): Promise<void> {
  // A worker still starting up has no signal handler yet.
  await Promise.all(ws.map((w) => w.waitForStderr("running on")));
  for (const w of ws) w.child.kill("SIGTERM");
  const exits = await Promise.all(ws.map((w) => w.exited));
  assert.deepEqual(exits.map((e) => e.code), ws.map(() => 0), ws.map((w) => w.stderr()).join("\n"));
}

// This file runs both stores itself, so the PostgreSQL pass of scripts/test.mjs (TEST_STORE "postgres") has nothing more to run here.
for (const kind of TEST_STORE === "postgres" ? [] : ["sqlite", ...(PG_URL ? ["postgres"] : [])]) describe(`flow control across processes (${kind})`, () => {
  const drops: (() => Promise<void>)[] = [];
  beforeEach(() => {
    if (kind === "sqlite") { store = undefined; return; }
    const pg = pgSchemaUrl("rm_flow");
    store = pg.url;
    drops.push(pg.drop);
  });
  after(async () => { for (const drop of drops) await drop(); });

test("schedule: a one-second schedule run by three workers for about 10 s creates exactly one task per slot", async (t) => {
  const { root, cleanup } = tempRoot();
  t.after(cleanup);
  prepareRoot(root, { leaseTimeoutMs: 30_000 });
  const flow = join(root, "tick.json");
  writeFileSync(flow, JSON.stringify({ steps: [{ id: "a", agent: "echo", input: "tick" }] }));
  const added = await cli(["schedule", "add", "--root", root, "--name", "tick", "--cron", "* * * * * *", "--overlap", "allow", "--file", flow, "--json"]);
  assert.equal(added.code, 0, added.stderr);
  const firstSlot = added.json<{ schedule: { nextSlotMs: number } }>().schedule.nextSlotMs;
  const ws = workers(t, root, join(root, "log"), 3);
  const mesh = await reader(root);
  t.after(() => mesh.close());
  await waitUntil(async () => (await mesh.getSchedule("tick")).firedCount >= 10, "10 slots fired", 60_000, 200);
  await mesh.pauseSchedule("tick");
  await stop(ws);

  const s = await mesh.getSchedule("tick");
  const { tasks } = await mesh.listTasks({ limit: 1_000 });
  const fired = tasks.filter((x) => x.scheduleName === "tick");
  const slots = (s.lastSlotMs! - firstSlot) / 1_000 + 1;
  assert.ok(slots >= 10, `${slots} slots`);
  assert.equal(s.skippedCount, 0, "no slot skipped or missed");
  assert.equal(s.firedCount, slots, "every slot from the first to the last fired once");
  assert.equal(fired.length, slots, "exactly one task per slot");
  assert.ok(fired.every((x) => x.status === "SUCCESS"), JSON.stringify(fired.map((x) => x.status)));
  const listed = (await cli(["schedule", "list", "--root", root, "--json"])).json<{ schedules: { name: string; lastTaskId: string; paused: boolean }[] }>();
  assert.equal(listed.schedules[0]!.lastTaskId, s.lastTaskId);
  assert.ok(fired.some((x) => x.taskId === s.lastTaskId));
  assert.equal(listed.schedules[0]!.paused, true);
});

test("concurrency: a key with limit 2 never has 3 steps running across three workers, and other keys are not held up", async (t) => {
  const { root, cleanup } = tempRoot();
  t.after(cleanup);
  prepareRoot(root, { leaseTimeoutMs: 30_000 });
  const log = join(root, "log");
  const mesh = await reader(root);
  t.after(() => mesh.close());
  const keyed: string[] = [];
  for (let i = 0; i < 12; i++) {
    keyed.push((await mesh.submitWorkflow({ concurrency: { key: "cust-{{input.c}}", limit: 2 }, steps: [{ id: "a", agent: "timed", input: { c: 42, ms: 300 } }] })).taskId);
  }
  const free = (await mesh.submit({ agent: "timed", input: { ms: 10 } })).taskId;
  const ws = workers(t, root, log, 3);
  await waitUntil(async () => (await statusCounts(mesh)).SUCCESS === 13, "13 tasks SUCCESS", 60_000);
  await stop(ws);

  const lines = readLog(log);
  const events = lines.filter((l) => keyed.includes(l.taskId)).map((l) => [l.at, l.kind === "start" ? 1 : -1] as const)
    .sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let running = 0;
  let max = 0;
  for (const [, d] of events) max = Math.max(max, (running += d));
  assert.equal(max, 2, "at most 2 at once (and 2 reached: the key is not serialised)");
  assert.equal(lines.filter((l) => l.kind === "start" && keyed.includes(l.taskId)).length, 12, "each keyed step ran once");
  const lastKeyedStart = Math.max(...lines.filter((l) => l.kind === "start" && keyed.includes(l.taskId)).map((l) => l.at));
  assert.ok(lines.find((l) => l.taskId === free && l.kind === "start")!.at < lastKeyedStart, "the unkeyed task did not wait behind the full key");
});

test("rate limit: 20/s shared by three workers (named by workflows and by an agent's config) is never exceeded in any 1-second window, and every step finishes", async (t) => {
  const { root, cleanup } = tempRoot();
  t.after(cleanup);
  prepareRoot(root, { leaseTimeoutMs: 30_000, rateLimits: { api: { perSecond: 20, burst: 1 } } });
  // "limited" is the "timed" agent whose config names the limit: its steps take a token without naming it.
  const modules = join(root, "agents", "modules.json");
  const spec = JSON.parse(readFileSync(modules, "utf8")) as { agents: Record<string, unknown>[] };
  spec.agents.push({ ...spec.agents.find((a) => a.id === "timed")!, id: "limited", rateLimit: "api" });
  writeFileSync(modules, JSON.stringify(spec));
  const log = join(root, "log");
  const mesh = await reader(root);
  t.after(() => mesh.close());
  const ws = workers(t, root, log, 3);
  // Warm pools first: steps claimed while worker threads boot would all start together once they are up.
  await Promise.all(ws.map((w) => w.waitForStderr("running on")));
  await Promise.all(Array.from({ length: 24 }, () => mesh.submit({ agent: "echo", input: 1 })));
  await waitUntil(async () => (await statusCounts(mesh)).SUCCESS === 24, "warm-up tasks SUCCESS", 60_000);
  await Promise.all(Array.from({ length: 60 }, (_, i) => (i % 2 === 0
    ? mesh.submitWorkflow({ rateLimit: "api", steps: [{ id: "a", agent: "timed", input: { ms: 0 } }] })
    : mesh.submit({ agent: "limited", input: { ms: 0 } }))));
  await waitUntil(async () => (await statusCounts(mesh)).SUCCESS === 84, "60 tasks SUCCESS", 60_000);
  await stop(ws);

  const started = readLog(log).filter((l) => l.kind === "start");
  assert.equal(started.length, 60, "each step ran once: a throttled step is not a failed attempt");
  // The token is taken when a step is claimed (the store's startedAtMs, one clock for all nodes):
  // at most 20 claims in any 1 s window. An agent starts a dispatch delay d later (0 ≤ d ≤ D),
  // so its logged starts hold at most 20 in any (1 s − D) window (D: the spread of those delays).
  const claimedAt = new Map<string, number>();
  const { tasks } = await mesh.listTasks({ status: "SUCCESS", limit: 100 });
  for (const x of tasks) {
    const s = (await mesh.getTask(x.taskId)).steps[0]!;
    if (s.rateLimit === "api") claimedAt.set(x.taskId, s.startedAtMs!);
    assert.equal(s.attempt, 1);
  }
  assert.equal(claimedAt.size, 60);
  // On PostgreSQL the store's clock is the server's, as this machine estimates it (to within half
  // a round trip): an agent's local clock may read a few ms before its claim's store time.
  const skew = kind === "postgres" ? 50 : 0;
  const delays = started.map((l) => l.at - claimedAt.get(l.taskId)!);
  const [minDelay, maxDelay] = [Math.min(...delays), Math.max(...delays)];
  assert.ok(minDelay >= -skew && maxDelay < 1_000, `dispatch delays ${minDelay}–${maxDelay} ms`);
  const spread = maxDelay - Math.min(0, minDelay);
  const worst = (times: number[], windowMs: number) => {
    const sorted = [...times].sort((a, b) => a - b);
    let most = 0;
    for (let i = 0, j = 0; i < sorted.length; i++) {
      while (sorted[i]! - sorted[j]! >= windowMs) j++;
      most = Math.max(most, i - j + 1);
    }
    return most;
  };
  assert.ok(worst([...claimedAt.values()], 1_000) <= 20, `at most 20 claims in any 1 s window, saw ${worst([...claimedAt.values()], 1_000)}`);
  const agentWorst = worst(started.map((l) => l.at), 1_000 - spread);
  assert.ok(agentWorst <= 20, `at most 20 agent starts in any ${1_000 - spread} ms window, saw ${agentWorst}`);
  const span = Math.max(...claimedAt.values()) - Math.min(...claimedAt.values());
  assert.ok(span >= 59 * 50, `60 starts at 20/s take about 3 s (took ${span} ms)`);
  const metrics = (await cli(["metrics", "--root", root])).stdout;
  assert.match(metrics, /relaymesh_rate_limited_total\{limit="api"\} [1-9]/);
});

test("delayed start: steps start neither before their time nor more than one poll interval after it", async (t) => {
  const { root, cleanup } = tempRoot();
  t.after(cleanup);
  prepareRoot(root, { leaseTimeoutMs: 30_000 });
  const log = join(root, "log");
  const mesh = await reader(root);
  t.after(() => mesh.close());
  const ws = workers(t, root, log, 2);
  await Promise.all(ws.map((w) => w.waitForStderr("running on")));
  const due = new Map<string, number>();
  for (const delay of ["1s", "1500ms", "2s", "2500ms"]) {
    const sub = await cli(["submit", "--root", root, "--agent", "timed", "--delay", delay, "--json"]);
    assert.equal(sub.code, 0, sub.stderr);
    const { taskId } = sub.json<{ taskId: string }>();
    const task = await mesh.getTask(taskId);
    assert.equal(task.steps[0]!.status, "SCHEDULED");
    due.set(taskId, task.steps[0]!.notBeforeMs!);
  }
  // The human views say why a step waits, and until when.
  const later = (await cli(["submit", "--root", root, "--agent", "timed", "--not-before", "2099-01-01T00:00:00Z", "--json"])).json<{ taskId: string }>().taskId;
  for (const command of ["task", "workflow"]) {
    const shown = await cli([command, later, "--root", root]);
    assert.equal(shown.code, 0, shown.stderr);
    assert.match(shown.stdout, /SCHEDULED .*scheduled until 2099-01-01T00:00:00\.000Z/, `${command}: ${shown.stdout}`);
  }
  await waitUntil(async () => (await statusCounts(mesh)).SUCCESS === 4, "4 delayed tasks SUCCESS", 30_000);
  await stop(ws);
  for (const [taskId, notBefore] of due) {
    const start = readLog(log).find((l) => l.kind === "start" && l.taskId === taskId)!.at;
    const claimedAt = (await mesh.getTask(taskId)).steps[0]!.startedAtMs!;
    assert.ok(claimedAt >= notBefore, `task claimed ${notBefore - claimedAt} ms early (store clock)`);
    // The agent's clock is this machine's; on PostgreSQL the store's is the server's as estimated here.
    assert.ok(start >= notBefore - (kind === "postgres" ? 50 : 0), `task started ${notBefore - start} ms early (agent clock)`);
    assert.ok(claimedAt - notBefore <= 100, `claimed ${claimedAt - notBefore} ms after its time (poll interval 100 ms)`);
  }
});

test("deadline: a running workflow is cancelled when its deadline passes, with the reason, and its agent sees the deadline", async (t) => {
  const { root, cleanup } = tempRoot();
  t.after(cleanup);
  prepareRoot(root, { leaseTimeoutMs: 30_000 });
  const log = join(root, "log");
  const mesh = await reader(root);
  t.after(() => mesh.close());
  const ws = workers(t, root, log, 2);
  await Promise.all(ws.map((w) => w.waitForStderr("running on")));
  const { taskId } = await mesh.submitWorkflow({
    deadlineMs: 3_000,
    steps: [{ id: "long", agent: "timed", input: { ms: 60_000 } }, { id: "after", agent: "timed", dependsOn: ["long"] }],
  });
  const done = await mesh.waitFor(taskId, { timeoutMs: 20_000 });
  await stop(ws);
  assert.equal(done.status, "CANCELLED");
  assert.equal(done.cancelReason, "deadline");
  assert.deepEqual(done.steps.map((s) => s.status), ["CANCELLED", "CANCELLED"]);
  assert.ok(done.finishedAtMs! >= done.deadlineAtMs!, "not cancelled before the deadline");
  const start = readLog(log).find((l) => l.taskId === taskId && l.kind === "start")!;
  assert.equal(Number(start.deadline), done.deadlineAtMs);
  assert.equal(readLog(log).filter((l) => l.taskId === taskId && l.kind === "end").length, 0, "the running step was aborted");
});

});

test("bad definitions: schedule add and submit-workflow exit 2 naming the field, and nothing is written", async (t) => {
  const { root: parent, cleanup } = tempRoot();
  t.after(cleanup);
  const root = join(parent, "never-created");
  const flow = join(parent, "flow.json");
  writeFileSync(flow, JSON.stringify({ steps: [{ id: "a", agent: "echo" }] }));
  const cases: [string[], RegExp][] = [
    [["schedule", "add", "--name", "s", "--cron", "* * *", "--file", flow], /cron/],
    [["schedule", "add", "--name", "s", "--cron", "* * * * *", "--timezone", "Nowhere/City", "--file", flow], /timezone/],
    [["schedule", "add", "--name", "s", "--cron", "* * * * *", "--overlap", "maybe", "--file", flow], /--overlap/],
    [["schedule", "add", "--name", "s", "--cron", "* * * * *", "--catch-up", "all", "--catch-up-window", "soon", "--file", flow], /--catch-up-window/],
    [["schedule", "add", "--name", "s", "--cron", "* * * * *", "--jitter", "-5s", "--file", flow], /--jitter/],
    [["submit", "--agent", "echo", "--delay", "tomorrow"], /--delay/],
    [["submit", "--agent", "echo", "--not-before", "someday"], /--not-before/],
  ];
  const badFlows: [unknown, RegExp][] = [
    [{ concurrency: { key: "k", limit: 0 }, steps: [{ id: "a", agent: "echo" }] }, /concurrency\.limit/],
    [{ steps: [{ id: "a", agent: "echo", rateLimit: "nope" }] }, /step "a"\.rateLimit: unknown rate limit "nope"/],
    [{ dedupe: { key: "d", windowMs: 1000, mode: "merge" }, steps: [{ id: "a", agent: "echo" }] }, /dedupe\.mode/],
    [{ deadline: "yesterday-ish", steps: [{ id: "a", agent: "echo" }] }, /deadline/],
  ];
  for (const [i, [spec, re]] of badFlows.entries()) {
    const file = join(parent, `bad-${i}.json`);
    writeFileSync(file, JSON.stringify(spec));
    cases.push([["submit-workflow", "--file", file], re]);
  }
  for (const [args, re] of cases) {
    const r = await runCli([...args, "--root", root]);
    assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, re, args.join(" "));
    assert.equal(r.stderr.trim().split("\n").length, 1, "one line");
    assert.equal(existsSync(root), false, `${args.join(" ")} wrote nothing`);
  }
});

test("bad limit definitions: a malformed rate limit in the settings, or an agent config naming an unknown one, exits 2 naming it; nothing is written", async (t) => {
  const { root, cleanup } = tempRoot();
  t.after(cleanup);
  prepareRoot(root, { rateLimits: { api: { perSecond: 0 } } });
  const db = join(root, "relaymesh.db");
  const flow = join(root, "flow.json");
  writeFileSync(flow, JSON.stringify({ steps: [{ id: "a", agent: "echo" }] }));
  const commands = [["submit", "--agent", "echo"], ["submit-workflow", "--file", flow], ["schedule", "add", "--name", "s", "--cron", "* * * * *", "--file", flow], ["worker", "--once"]];
  const expectRefused = async (re: RegExp) => {
    for (const args of commands) {
      const r = await runCli([...args, "--root", root]);
      assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
      assert.match(r.stderr, re, args.join(" "));
      assert.equal(existsSync(db), false, `${args.join(" ")} wrote nothing`);
    }
  };
  await expectRefused(/rateLimits\.api\.perSecond/);
  prepareRoot(root, { rateLimits: { api: { perSecond: 20 } } });
  const modules = join(root, "agents", "modules.json");
  const spec = JSON.parse(readFileSync(modules, "utf8")) as { agents: Record<string, unknown>[] };
  spec.agents[0]!.rateLimit = { name: "openai", key: "{{input.tenant}}" };
  writeFileSync(modules, JSON.stringify(spec));
  await expectRefused(/agent "record"\.rateLimit: unknown rate limit "openai" \(settings rateLimits has api\)/);
});
