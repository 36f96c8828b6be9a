import { test } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { cli, spawnCli, tempRoot, waitUntil, REPO } from "../helpers.js";
import { pgSchemaUrl, skipPg } from "../store/pg.js";
import { prepareRoot, reader } from "./setup.js";

const STATUSES = ["PENDING", "RUNNING", "SUCCESS", "DEAD_LETTER", "CANCELLED"];

async function statusesOn(root: string, store: string | null): Promise<Record<string, string>> {
  const r = await cli(["tasks", "--limit", "100", "--root", root, ...(store ? ["--store", store] : []), "--json"]);
  assert.equal(r.code, 0, r.stderr);
  return Object.fromEntries(r.json<{ tasks: { taskId: string; status: string }[] }>().tasks.map((t) => [t.taskId, t.status]));
}

test("migrate --to postgres://: a root with tasks in every status moves onto PostgreSQL, a worker there finishes them, a rerun copies nothing; snapshots cross stores both ways", { skip: skipPg }, async (t) => {
  const { root, cleanup } = tempRoot();
  t.after(cleanup);
  const pgA = pgSchemaUrl();
  const pgB = pgSchemaUrl();
  t.after(() => pgA.drop());
  t.after(() => pgB.drop());
  prepareRoot(root, { leaseTimeoutMs: 60_000 });
  writeFileSync(join(root, "agents", "modules.json"), JSON.stringify({ agents: [
    { id: "awaitFile", module: join(REPO, "test/fixtures/agents/gate.mjs"), export: "awaitFile" },
    { id: "flaky", module: join(REPO, "test/fixtures/process/flaky.mjs"), export: "flaky" },
  ] }));
  const open = join(root, "open");
  const mesh = await reader(root);
  const running = (await mesh.submit({ agent: "awaitFile", input: { file: open } })).taskId;
  const retrying = (await mesh.submit({ agent: "flaky", input: { okFile: open }, retry: { maxAttempts: 3, baseBackoffMs: 4_000, maxBackoffMs: 4_000 } })).taskId;
  const dead = (await mesh.submit({ agent: "fail", retry: { maxAttempts: 1 } })).taskId;
  const done = (await mesh.submit({ agent: "echo", input: "done" }, { idempotencyKey: "key-done" })).taskId;
  const worker = spawnCli(["worker", "--root", root, "--node-id", "sqlite-node"]);
  t.after(() => { worker.child.kill("SIGKILL"); });
  await waitUntil(async () => {
    const s = await statusesOn(root, null);
    const step = (await mesh.getTask(retrying)).steps[0]!;
    return s[running] === "RUNNING" && step.status === "RETRY_WAIT" && s[dead] === "DEAD_LETTER" && s[done] === "SUCCESS";
  }, "a task in each of RUNNING, RETRY_WAIT, DEAD_LETTER, SUCCESS");
  worker.child.kill("SIGKILL");
  await worker.exited;
  await mesh.kv(done).put("progress", { pages: 3 });
  const pending = (await mesh.submit({ agent: "echo", input: "later" })).taskId;
  const cancelled = (await mesh.submit({ agent: "echo", input: "never" })).taskId;
  await mesh.cancel(cancelled);
  const leaseEpoch = (await mesh.getTask(running)).steps[0]!.leaseEpoch;
  await mesh.close();
  const before = await statusesOn(root, null);
  assert.deepEqual(new Set(Object.values(before)), new Set(STATUSES));

  const first = await cli(["migrate", "--to", pgA.url, "--root", root, "--json"]);
  assert.equal(first.code, 0, first.stderr);
  const r = first.json<{ to: string; copied: Record<string, number>; requeued: number; alreadyPresent: { tasks: number } }>();
  assert.match(r.to, /^postgres:\/\//);
  assert.deepEqual([r.copied.tasks, r.copied.steps, r.copied.kv, r.copied.idempotencyKeys, r.requeued], [6, 6, 1, 1, 1]);
  assert.ok(r.copied.settingsHistory >= 0);
  const second = await cli(["migrate", "--to", pgA.url, "--root", root, "--json"]);
  assert.equal(second.code, 0, second.stderr);
  const r2 = second.json<{ copied: Record<string, number>; alreadyPresent: { tasks: number } }>();
  assert.ok(Object.values(r2.copied).every((n) => n === 0), JSON.stringify(r2.copied));
  assert.equal(r2.alreadyPresent.tasks, 6);
  assert.deepEqual(await statusesOn(root, pgA.url), before, "every task arrives in its status");
  const moved = (await cli(["task", running, "--store", pgA.url, "--root", root, "--json"])).json<{ steps: { status: string; leaseEpoch: number; leaseOwner: string | null }[] }>();
  assert.deepEqual([moved.steps[0]!.status, moved.steps[0]!.leaseEpoch, moved.steps[0]!.leaseOwner], ["READY", leaseEpoch + 1, null]);

  // A worker on PostgreSQL finishes what was unfinished.
  writeFileSync(open, "");
  const pgWorker = spawnCli(["worker", "--root", root, "--store", pgA.url, "--node-id", "pg-node"]);
  t.after(() => { pgWorker.child.kill("SIGKILL"); });
  await waitUntil(async () => {
    const s = await statusesOn(root, pgA.url);
    return [running, retrying, pending].every((id) => s[id] === "SUCCESS") ? s : null;
  }, "the unfinished tasks to finish on PostgreSQL", 60_000);
  pgWorker.child.kill("SIGTERM");
  await pgWorker.exited;
  const after = await statusesOn(root, pgA.url);
  assert.deepEqual([after[dead], after[done], after[cancelled]], ["DEAD_LETTER", "SUCCESS", "CANCELLED"]);
  const kv = (await cli(["kv", "get", "progress", "--namespace", done, "--store", pgA.url, "--root", root, "--json"])).json<{ value: unknown }>();
  assert.deepEqual(kv.value, { pages: 3 });
  const again = (await cli(["submit", "--agent", "echo", "--idempotency-key", "key-done", "--store", pgA.url, "--root", root, "--json"])).json<{ taskId: string; created: boolean }>();
  assert.deepEqual(again, { taskId: done, created: false });

  // A target holding other tasks is refused without --merge.
  const other = tempRoot();
  t.after(other.cleanup);
  assert.equal((await cli(["submit", "--agent", "echo", "--root", other.root, "--json"])).code, 0);
  const refused = await cli(["migrate", "--to", pgA.url, "--root", other.root]);
  assert.equal(refused.code, 2);
  assert.match(refused.stderr, /holds 6 task\(s\) of another store; pass --merge/);
  const merged = await cli(["migrate", "--to", pgA.url, "--merge", "--root", other.root, "--json"]);
  assert.equal(merged.code, 0, merged.stderr);
  assert.equal(merged.json<{ copied: { tasks: number } }>().copied.tasks, 1);

  // Snapshots: PostgreSQL → a SQLite root, and the SQLite root → another PostgreSQL schema.
  const snapPg = join(root, "snap-pg");
  assert.equal((await cli(["snapshot-export", "--out", snapPg, "--store", pgA.url, "--root", root])).code, 0);
  const fresh = join(root, "restored");
  const imp = await cli(["snapshot-import", "--in", snapPg, "--root", fresh]);
  assert.equal(imp.code, 0, imp.stderr);
  assert.deepEqual(await statusesOn(fresh, null), await statusesOn(root, pgA.url));
  const snapSqlite = join(root, "snap-sqlite");
  assert.equal((await cli(["snapshot-export", "--out", snapSqlite, "--root", root])).code, 0);
  const imp2 = await cli(["snapshot-import", "--in", snapSqlite, "--root", join(root, "restored-pg"), "--store", pgB.url]);
  assert.equal(imp2.code, 0, imp2.stderr);
  assert.deepEqual(await statusesOn(root, pgB.url), before);
});
