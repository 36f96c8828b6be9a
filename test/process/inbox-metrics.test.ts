import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { cli, spawnCli, tempRoot } from "../helpers.js";
import { reader } from "./setup.js";

const flow = (name: string) => JSON.stringify({ name, steps: [{ id: "a", agent: "echo", input: name }, { id: "b", agent: "collect", dependsOn: ["a"] }] });

test("inbox: valid, invalid and re-dropped files; a file left in processing/ by a crash is submitted on restart", async (t) => {
  const { root, cleanup } = tempRoot();
  t.after(cleanup);
  await cli(["init", "--root", root]);
  const inbox = join(root, "inbox");
  for (const d of ["high", "normal", "low", "processing"]) mkdirSync(join(inbox, d), { recursive: true });
  writeFileSync(join(inbox, "high", "urgent.json"), flow("urgent"));
  writeFileSync(join(inbox, "low", "later.json"), JSON.stringify({ priority: "high", steps: [{ id: "x", agent: "echo" }] }));
  writeFileSync(join(inbox, "normal", "broken.json"), JSON.stringify({ steps: [{ id: "a", agent: "nope", typo: true }] }));
  writeFileSync(join(inbox, "normal", "garbage.json"), "{ nope");
  // As if a worker had claimed it (renamed it into processing/) and died before submitting.
  writeFileSync(join(inbox, "processing", "normal__crashed.json"), flow("crashed"));

  const r = await cli(["worker", "--once", "--root", root, "--json"]);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(readdirSync(join(inbox, "done")).sort(), ["crashed.json", "later.json", "urgent.json"]);
  assert.deepEqual(readdirSync(join(inbox, "dead")).sort(), ["broken.json", "broken.json.error.json", "garbage.json", "garbage.json.error.json"]);
  assert.deepEqual(readdirSync(join(inbox, "processing")), []);
  for (const d of ["high", "normal", "low"]) assert.deepEqual(readdirSync(join(inbox, d)), []);
  const error = JSON.parse(readFileSync(join(inbox, "dead", "broken.json.error.json"), "utf8")) as { problems: { where: string; message: string }[] };
  const text = error.problems.map((p) => `${p.where}: ${p.message}`).join("\n");
  assert.match(text, /unknown agent "nope"/);
  assert.match(text, /unknown field "typo"/);
  assert.match(readFileSync(join(inbox, "dead", "garbage.json.error.json"), "utf8"), /invalid JSON/);

  const mesh = await reader(root);
  t.after(() => mesh.close());
  const { tasks, total } = await mesh.listTasks({ limit: 10 });
  assert.equal(total, 3);
  const byName = Object.fromEntries(tasks.map((x) => [x.name ?? "later", x]));
  assert.equal(byName.urgent!.priority, 2, "inbox/high makes a high-priority task");
  assert.equal(byName.crashed!.priority, 1);
  assert.equal(byName.later!.priority, 2, "the file's own priority wins over its folder");
  assert.ok(tasks.every((x) => x.status === "SUCCESS"));
  assert.ok(tasks.every((x) => x.idempotencyKey?.startsWith("inbox:sha256:")));

  // The same content dropped again is recognised by its hash and does not run twice.
  writeFileSync(join(inbox, "normal", "urgent-again.json"), flow("urgent"));
  const again = (await cli(["ingest", "--root", root, "--json"])).json<{ submitted: { file: string; created: boolean }[] }>();
  assert.deepEqual(again.submitted.map((s) => [s.file, s.created]), [["urgent-again.json", false]]);
  assert.equal((await mesh.listTasks({ limit: 10 })).total, 3);
  assert.ok(existsSync(join(inbox, "done", "urgent-again.json")));
});

/** Minimal Prometheus text-format check: every sample line is `name{labels} value`. */
function parsePrometheus(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) {
      assert.match(line, /^$|^# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* .+$/, `comment line: ${line}`);
      continue;
    }
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?) (-?[0-9.e+]+|NaN|\+Inf|-Inf)$/.exec(line);
    assert.ok(m, `sample line: ${line}`);
    samples.set(m[1]!, Number(m[2]));
  }
  return samples;
}

test("serve-metrics: /metrics parses as Prometheus text and its figures move when work happens", async (t) => {
  const { root, cleanup } = tempRoot();
  t.after(cleanup);
  await cli(["init", "--root", root]);
  const server = spawnCli(["serve-metrics", "--port", "0", "--root", root]);
  t.after(() => { server.child.kill("SIGKILL"); });
  await server.waitForStderr("metrics on http://");
  const url = /metrics on (http:\/\/\S+)/.exec(server.stderr())![1]!;
  const scrape = async () => {
    const res = await fetch(url);
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type") ?? "", /text\/plain/);
    return parsePrometheus(await res.text());
  };
  const before = await scrape();
  for (const name of ["relaymesh_low_starvation_count", "relaymesh_lease_conflict_total", "relaymesh_dead_owner_reclaimed_total", "relaymesh_cluster_epoch", "relaymesh_queue_lag_ms"]) {
    assert.ok(before.has(name), `${name} is exported`);
  }
  assert.equal(before.get('relaymesh_tasks{status="SUCCESS"}'), 0);
  assert.equal(before.get("relaymesh_step_duration_seconds_count"), 0);

  await cli(["submit", "--agent", "echo", "--input", "1", "--root", root]);
  await cli(["submit", "--agent", "fail", "--root", root]);
  assert.equal((await cli(["worker", "--once", "--root", root])).code, 0);
  const after = await scrape();
  assert.equal(after.get('relaymesh_tasks{status="SUCCESS"}'), 1);
  assert.equal(after.get("relaymesh_step_duration_seconds_count"), 1, "the echo step finished; the failed one waits for its retry");
  assert.equal(after.get('relaymesh_steps{status="RETRY_WAIT"}'), 1);
  assert.equal(after.get('relaymesh_step_duration_seconds_bucket{le="+Inf"}'), after.get("relaymesh_step_duration_seconds_count"));
  const cli_ = await cli(["metrics", "--root", root]);
  assert.equal(cli_.code, 0);
  parsePrometheus(cli_.stdout);
  server.child.kill("SIGTERM");
  assert.equal((await server.exited).code, 0);
});
