import { test } from "node:test";
import assert from "node:assert/strict";
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { spawnSync } from "node:child_process";
import { BIN, cli, REPO, spawnCli, storeFor, tempRoot, TEST_STORE, waitUntil } from "../helpers.js";
import { RelayMesh } from "../../src/index.js";

/** Fields every report carries (reportVersion 2). */
const REPORT_FIELDS = [
  "reportVersion", "runId", "relaymeshVersion", "startedAt", "finishedAt", "tasks", "submitted", "finished", "stoppedBy", "workload", "load",
  "throughputPerSec", "stepsPerSec", "latencyMs", "steps", "failures", "statuses", "notSucceeded", "series", "resources", "stability",
  "settings", "durability", "store", "machine", "seconds",
];

function readReport(path: string): any {
  return JSON.parse(readFileSync(path, "utf8"));
}

/** Asserts an HTML report exists, plots with inline SVG, and fetches nothing. */
function assertSelfContainedHtml(path: string): string {
  assert.ok(existsSync(path), `HTML report at ${path}`);
  const html = readFileSync(path, "utf8");
  assert.match(html, /^<!doctype html>/);
  assert.ok((html.match(/<svg /g) ?? []).length >= 8, "one SVG plot per figure over time, and the per-step bars");
  assert.match(html, /<path d="M/, "a drawn line");
  for (const forbidden of [/<script/i, /<link/i, /<img/i, /<iframe/i, /\bsrc\s*=/i, /\bhref\s*=/i, /url\(/i, /@import/i, /https?:\/\//i]) {
    assert.doesNotMatch(html, forbidden, `the HTML report must not fetch anything (${forbidden})`);
  }
  return html;
}

/** The user's root must hold no task: a default run uses a scratch store. */
async function assertNoTasksIn(root: string): Promise<void> {
  const mesh = await RelayMesh.open({ root, work: false, ...(storeFor(root) ? { store: storeFor(root) } : {}) });
  try {
    assert.equal((await mesh.listTasks({ limit: 1 })).total, 0, "no benchmark task in the user's store");
  } finally {
    await mesh.close();
  }
  assert.deepEqual(readdirSync(join(root, "reports")).filter((f) => f.startsWith("bench-") && !f.endsWith(".json") && !f.endsWith(".html")), [], "the scratch root was removed");
}

test("bench: the CONTRACT shape with --json, a JSON report of every figure and a self-contained HTML report beside it; scratch store removed", async (t) => {
  const { root, cleanup } = tempRoot();
  t.after(cleanup);
  const out = join(root, "out", "run.json");
  const r = await cli(["bench", "--root", root, "--tasks", "300", "--shape", "chain", "--in-flight", "16", "--warmup", "20", "--report-out", out, "--json"], { timeoutMs: 120_000 });
  assert.equal(r.code, 0, r.stderr);
  const doc = r.json();
  for (const k of ["tasks", "seconds", "throughputPerSec", "reportOut", "htmlOut"]) assert.ok(k in doc, `--json has ${k}`);
  for (const k of ["p50", "p95", "p99"]) assert.equal(typeof doc.latencyMs[k], "number");
  assert.equal(doc.tasks, 300);
  assert.equal(doc.reportOut, out);
  assert.equal(doc.htmlOut, join(root, "out", "run.html"));
  assert.equal(doc.series, undefined, "the time series stays in the file");

  const report = readReport(out);
  for (const k of REPORT_FIELDS) assert.ok(k in report, `report has ${k}`);
  assert.equal(report.finished, 300);
  assert.equal(report.statuses.SUCCESS, 300);
  assert.equal(report.notSucceeded, 0);
  assert.equal(report.stoppedBy, "tasks");
  assert.deepEqual(report.load, { model: "closed", inFlight: 16 });
  assert.equal(report.warmupTasks, 20);
  for (const k of ["p50", "p90", "p95", "p99", "max"]) assert.ok(report.latencyMs[k] > 0, `latency ${k}`);
  assert.ok(report.latencyMs.p50 <= report.latencyMs.p90 && report.latencyMs.p90 <= report.latencyMs.p99 && report.latencyMs.p99 <= report.latencyMs.max);
  assert.deepEqual(report.steps.map((s: any) => s.stepId), ["a", "b", "c"]);
  for (const s of report.steps) {
    assert.equal(s.runMs.count, 300, `step ${s.stepId} ran 300 times`);
    assert.ok(s.queueWaitMs.count > 0 && s.commitMs.count > 0);
  }
  assert.deepEqual(report.failures.tasks, {});
  assert.ok(report.series.length >= 1);
  const last = report.series.at(-1);
  assert.equal(last.completed, 300);
  for (const k of ["tMs", "completedPerSec", "submittedPerSec", "rssMb", "heapUsedMb", "cpuPct", "inFlight", "failedTasks"]) assert.equal(typeof last[k], "number", `sample has ${k}`);
  assert.ok(report.resources.rssMb.peak >= report.resources.rssMb.start);
  assert.equal(report.durability, "full");
  assert.equal(report.settings.maxAttempts, 3);
  assert.equal(typeof report.machine.cores, "number");
  assert.equal(report.relaymeshVersion, JSON.parse(readFileSync(join(REPO, "package.json"), "utf8")).version);
  assert.match(report.store, TEST_STORE === "sqlite" ? /^scratch \(sqlite:/ : /^scratch \(postgres:.*_bench_/);

  const html = assertSelfContainedHtml(doc.htmlOut);
  assert.match(html, /Throughput/);
  assert.match(html, /latency/i);
  await assertNoTasksIn(root);
});

test("bench --workflow: the user's module, script and persistent script agents, relative paths and all, at an offered rate", async (t) => {
  const { root, cleanup } = tempRoot();
  t.after(cleanup);
  mkdirSync(join(root, "agents"), { recursive: true });
  copyFileSync(join(REPO, "examples/agents/slugify.mjs"), join(root, "agents", "slugify.mjs"));
  copyFileSync(join(REPO, "test/fixtures/scripts/persistent.mjs"), join(root, "agents", "persistent.mjs"));
  copyFileSync(join(REPO, "test/fixtures/process/record.mjs"), join(root, "agents", "record.mjs"));
  writeFileSync(join(root, "agents", "modules.json"), JSON.stringify({ agents: [{ id: "record", module: "agents/record.mjs", export: "record" }] }));
  writeFileSync(join(root, "agents", "scripts.json"), JSON.stringify({
    agents: [
      { id: "slugify", command: ["node", "agents/slugify.mjs"], timeoutMs: 10_000 },
      { id: "persist", command: ["node", "agents/persistent.mjs"], timeoutMs: 10_000, mode: "persistent", instances: 1 },
    ],
  }));
  const flow = join(root, "flow.json");
  writeFileSync(flow, JSON.stringify({
    name: "mine", idempotencyKey: "same-for-every-task",
    steps: [
      { id: "rec", agent: "record" },
      { id: "slug", agent: "slugify", input: { title: "Bench Me" } },
      { id: "up", agent: "persist", input: { op: "echo" }, dependsOn: ["rec", "slug"] },
    ],
  }));
  const out = join(root, "wf.json");
  const r = await cli(["bench", "--root", root, "--workflow", flow, "--rate", "40", "--tasks", "40", "--priority", "high", "--report-out", out, "--json"], { timeoutMs: 120_000 });
  assert.equal(r.code, 0, r.stderr);
  const report = readReport(out);
  assert.equal(report.statuses.SUCCESS, 40, "a file's idempotency key is made unique per task: every task ran");
  assert.equal(report.workload, "workflow:mine");
  assert.deepEqual(report.load, { model: "open", ratePerSec: 40 });
  assert.equal(report.workflow.priority, "high");
  assert.deepEqual(report.steps.map((s: any) => [s.stepId, s.runMs.count]), [["rec", 40], ["slug", 40], ["up", 40]]);
  assert.ok(report.seconds >= 0.9, "40 tasks at 40/s take about a second");
  assertSelfContainedHtml(r.json().htmlOut);
  await assertNoTasksIn(root);
});

test("bench: bad values exit 2 with one line naming the option, and nothing is written", async (t) => {
  const { root: dir, cleanup } = tempRoot();
  t.after(cleanup);
  const root = join(dir, "root");
  const cyclic = join(dir, "cyclic.json");
  writeFileSync(cyclic, JSON.stringify({ steps: [{ id: "a", agent: "echo", dependsOn: ["b"] }, { id: "b", agent: "echo", dependsOn: ["a"] }] }));
  const unknownAgent = join(dir, "unknown.json");
  writeFileSync(unknownAgent, JSON.stringify({ steps: [{ id: "a", agent: "nobody" }] }));
  const notJson = join(dir, "bad.json");
  writeFileSync(notJson, "{ steps: ");
  const cases: [string[], RegExp][] = [
    [["--rate", "0"], /--rate/],
    [["--rate", "-5"], /--rate/],
    [["--duration", "abc"], /--duration/],
    [["--duration", "0s"], /--duration/],
    [["--tasks", "0"], /--tasks/],
    [["--in-flight", "0"], /--in-flight/],
    [["--rate", "10", "--in-flight", "4"], /--rate and --in-flight/],
    [["--max-seconds", "0"], /--max-seconds/],
    [["--warmup", "x"], /--warmup/],
    [["--shape", "star"], /--shape/],
    [["--priority", "urgent"], /--priority/],
    [["--durability", "none"], /--durability/],
    [["--agent", "nope"], /--agent nope: no node serves agent "nope"/],
    [["--agent", "sleep"], /--agent sleep/],
    [["--workflow", cyclic], /--workflow .*cyclic\.json: .*cycle/],
    [["--workflow", unknownAgent], /--workflow .*unknown\.json: .*nobody/],
    [["--workflow", notJson], /--workflow .*bad\.json: invalid JSON/],
    [["--workflow", join(dir, "missing.json")], /--workflow .*missing\.json: no such file/],
    [["--workflow", cyclic, "--shape", "chain"], /--shape: not with --workflow/],
    [["--store", "mysql://db/app"], /--store mysql:\/\/db\/app: unknown store URL/],
    [["--store", "postgres://u:secret@db/app?schema=no-dashes"], /--store postgres:\/\/u:\*\*\*@db\/app.*schema/],
  ];
  for (const [args, message] of cases) {
    const r = await cli(["bench", "--root", root, ...(args.includes("--tasks") ? [] : ["--tasks", "10"]), ...args, "--report-out", join(dir, "r.json")]);
    assert.equal(r.code, 2, `${args.join(" ")}: exit 2 (stderr: ${r.stderr})`);
    const lines = r.stderr.trim().split("\n");
    assert.equal(lines.length, 1, `${args.join(" ")}: one line on stderr, got ${r.stderr}`);
    assert.match(lines[0]!, message, `${args.join(" ")}`);
    assert.equal(r.stdout, "");
    assert.ok(!existsSync(root), `${args.join(" ")}: the root was not created`);
    assert.ok(!existsSync(join(dir, "r.json")), `${args.join(" ")}: no report`);
  }
});

const hasScript = spawnSync("script", ["--version"]).status === 0;

test("bench on a terminal: a live line with progress, completed/s now and overall, p50/p99 so far, failures and RSS", { skip: hasScript ? false : "no script(1) to run it on a pseudo-terminal" }, async (t) => {
  const { root, cleanup } = tempRoot();
  t.after(cleanup);
  const command = [process.execPath, BIN, "bench", "--root", root, "--rate", "100", "--duration", "3s", "--report-out", join(root, "tty.json")].join(" ");
  const r = spawnSync("script", ["-qec", command, "/dev/null"], { encoding: "utf8", timeout: 120_000, env: { ...process.env, RELAYMESH_ROOT: "", RELAYMESH_STORE: "" } });
  assert.equal(r.status, 0, r.stderr);
  const screen = r.stdout.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, "\n");
  assert.match(screen, /\ds\/3s, \d+ done \| \d+\/s now, \d+\/s overall \| p50 [\d.]+ p99 [\d.]+ ms \| failures 0 \| RSS \d+ MB/);
  assert.match(screen, /open loop at 100 tasks\/s, stopped by duration/);
});

test("bench: Ctrl-C (SIGINT) stops submitting, drains what was submitted and still writes both reports", async (t) => {
  const { root, cleanup } = tempRoot();
  t.after(cleanup);
  const out = join(root, "interrupted.json");
  const run = spawnCli(["bench", "--root", root, "--rate", "50", "--duration", "5m", "--report-out", out, "--json"]);
  t.after(() => { run.child.kill("SIGKILL"); });
  await run.waitForStderr("measuring", 60_000);
  run.child.kill("SIGINT");
  const exit = await run.exited;
  assert.equal(exit.code, 0, run.stderr());
  assert.match(run.stderr(), /SIGINT received, stopped submitting/);
  const doc = JSON.parse(run.stdout());
  assert.equal(doc.stoppedBy, "interrupt");
  assert.ok(doc.submitted >= 1, "the task due at once was submitted");
  assert.equal(doc.finished, doc.submitted, "everything submitted was drained");
  assert.equal(doc.statuses.UNFINISHED, undefined);
  assert.equal(doc.durationSeconds, 300);
  assert.ok(doc.seconds < 300);
  assert.equal(readReport(out).runId, doc.runId);
  assertSelfContainedHtml(doc.htmlOut);
  await assertNoTasksIn(root);
});

test("bench compare: side by side with ratios and spreads; --json prints {rows:[{figure,a,b,ratio}]}; bad files exit 2 or 3", async (t) => {
  const { root, cleanup } = tempRoot();
  t.after(cleanup);
  const a = join(root, "a.json");
  const b = join(root, "b.json");
  for (const [out, rate] of [[a, "100"], [b, "200"]] as const) {
    const r = await cli(["bench", "--root", root, "--rate", rate, "--tasks", rate, "--report-out", out]);
    assert.equal(r.code, 0, r.stderr);
  }
  const r = await cli(["bench", "compare", a, b, "--json"]);
  assert.equal(r.code, 0, r.stderr);
  const { rows, notes } = r.json();
  const figures = rows.map((row: any) => row.figure);
  for (const f of ["throughputPerSec", "latencyMs.p50", "latencyMs.p99", "rssPeakMb", "notSucceeded"]) assert.ok(figures.includes(f), `row ${f}`);
  const tp = rows.find((row: any) => row.figure === "throughputPerSec");
  const ra = readReport(a);
  const rb = readReport(b);
  assert.equal(tp.a, ra.throughputPerSec);
  assert.equal(tp.b, rb.throughputPerSec);
  assert.ok(Math.abs(tp.ratio - rb.throughputPerSec / ra.throughputPerSec) < 1e-9);
  assert.ok("beyondSpread" in tp && "spreadA" in tp);
  assert.ok(notes.some((n: string) => /offered load/.test(n)), "a note says the loads differ");
  const human = await cli(["bench", "compare", a, b]);
  assert.equal(human.code, 0);
  assert.match(human.stdout, /B\/A/);
  assert.match(human.stdout, /throughputPerSec/);

  writeFileSync(join(root, "other.json"), JSON.stringify({ hello: 1 }));
  const bad = await cli(["bench", "compare", a, join(root, "other.json")]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /other\.json: not a bench report/);
  const missing = await cli(["bench", "compare", a, join(root, "nope.json")]);
  assert.equal(missing.code, 3);
});

test("bench --in-place: runs in the real store, every task named bench:<run id>; bench purge removes them and nothing else; the old benchmark-run form still works", async (t) => {
  const { root, cleanup } = tempRoot();
  t.after(cleanup);
  const real = await cli(["run", join(REPO, "examples/workflows/chain.json"), "--root", root, "--json"]);
  assert.equal(real.code, 0, real.stderr);
  const r = await cli(["bench", "--root", root, "--in-place", "--tasks", "30", "--json", "--report-out", join(root, "in-place.json")]);
  assert.equal(r.code, 0, r.stderr);
  const doc = r.json();
  assert.equal(doc.inPlace, true);
  assert.equal(doc.taskName, `bench:${doc.runId}`);
  const mesh = await RelayMesh.open({ root, work: false, ...(storeFor(root) ? { store: storeFor(root) } : {}) });
  t.after(() => mesh.close());
  const { tasks, total } = await mesh.listTasks({ limit: 100 });
  assert.equal(total, 31);
  assert.equal(tasks.filter((task) => task.name === doc.taskName && task.status === "SUCCESS").length, 30);

  const purge = await cli(["bench", "purge", doc.runId, "--root", root, "--json"]);
  assert.equal(purge.code, 0, purge.stderr);
  assert.deepEqual(purge.json(), { namePrefix: doc.taskName, finishedTasks: 30, deadLetters: 0 });
  const left = await mesh.listTasks({ limit: 100 });
  assert.equal(left.total, 1, "the real task stays");
  assert.equal(left.tasks[0]!.taskId, real.json().taskId);
  assert.equal((await cli(["bench", "purge", "not a run", "--root", root])).code, 2);

  const legacy = await cli(["benchmark-run", "--root", root, "--tasks", "50", "--agent", "echo", "--priority", "normal", "--input-size", "64",
    "--max-seconds", "180", "--report-out", join(root, "legacy.json"), "--json"]);
  assert.equal(legacy.code, 0, legacy.stderr);
  assert.equal(legacy.json().tasks, 50);
  assert.equal((await mesh.listTasks({ limit: 1 })).total, 1, "the legacy form ran in a scratch store");
});

test("bench --in-place with another worker on the store: tasks that worker finished count too (found in the store)", async (t) => {
  const { root, cleanup } = tempRoot();
  t.after(cleanup);
  const flow = join(root, "sleepy.json");
  writeFileSync(flow, JSON.stringify({ steps: [{ id: "nap", agent: "sleep", input: { ms: 20 } }] }));
  const worker = spawnCli(["worker", "--root", root, "--concurrency", "4", "--json"]);
  t.after(() => { worker.child.kill("SIGKILL"); });
  await waitUntil(() => existsSync(join(root, "relaymesh.db")), "the worker to open the store");
  const r = await cli(["bench", "--root", root, "--in-place", "--workflow", flow, "--tasks", "100", "--concurrency", "1", "--in-flight", "8", "--json",
    "--report-out", join(root, "shared.json")], { timeoutMs: 120_000 });
  assert.equal(r.code, 0, r.stderr);
  const doc = r.json();
  assert.equal(doc.finished, 100);
  assert.equal(doc.statuses.SUCCESS, 100);
  worker.child.kill("SIGTERM");
  await worker.exited;
  const ranElsewhere = JSON.parse(worker.stdout()).succeeded;
  assert.ok(ranElsewhere > 0, "the other worker ran some of the benchmark's steps");
  assert.equal(doc.steps[0].runMs.count, 100 - ranElsewhere, "per-step figures cover the steps this process ran");
});
