import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import pg from "pg";
import { cli, REPO, tempRoot } from "../helpers.js";
import { pgSchemaUrl, PG_URL, skipPg } from "../store/pg.js";
import { scratchStoreFor } from "../../src/store/scratch.js";
import { postgresSchemaExists } from "../../src/store/postgres/scratch.js";

/** Schemas of the server whose name starts with `prefix`. */
async function schemasLike(prefix: string): Promise<string[]> {
  const base = new URL(PG_URL!);
  base.search = "";
  const client = new pg.Client({ connectionString: base.toString() });
  await client.connect();
  try {
    return (await client.query<{ nspname: string }>("SELECT nspname FROM pg_namespace WHERE starts_with(nspname, $1)", [prefix])).rows.map((r) => r.nspname);
  } finally {
    await client.end();
  }
}

test("bench on PostgreSQL: the user's workflow runs in a scratch schema of the same database, dropped afterwards; the real schema is untouched", { skip: skipPg }, async (t) => {
  const { root, cleanup } = tempRoot();
  t.after(cleanup);
  const { url, schema, drop } = pgSchemaUrl("rm_bench");
  t.after(drop);
  const out = join(root, "pg.json");
  const r = await cli(["bench", "--root", root, "--store", url, "--workflow", join(REPO, "examples/workflows/chain.json"), "--rate", "100", "--tasks", "100", "--report-out", out, "--json"], { timeoutMs: 120_000 });
  assert.equal(r.code, 0, r.stderr);
  const report = JSON.parse(readFileSync(out, "utf8"));
  assert.equal(report.statuses.SUCCESS, 100);
  assert.match(report.store, new RegExp(`^scratch \\(postgres://.*schema=${schema}_bench_[0-9a-f]{8}`));
  assert.deepEqual(await schemasLike(schema), [], "neither the scratch schema nor the user's was left behind (the user's was never created)");
});

test("bench --in-place on PostgreSQL: tasks in the real schema named bench:<run id>; bench purge removes them", { skip: skipPg }, async (t) => {
  const { root, cleanup } = tempRoot();
  t.after(cleanup);
  const { url, drop } = pgSchemaUrl("rm_bench");
  t.after(drop);
  const r = await cli(["bench", "--root", root, "--store", url, "--in-place", "--tasks", "40", "--json", "--report-out", join(root, "r.json")], { timeoutMs: 120_000 });
  assert.equal(r.code, 0, r.stderr);
  const { runId, taskName } = r.json();
  const tasks = await cli(["tasks", "--root", root, "--store", url, "--limit", "100", "--json"]);
  assert.equal(tasks.json().total, 40);
  assert.ok(tasks.json().tasks.every((task: any) => task.name === taskName));
  const purge = await cli(["bench", "purge", runId, "--root", root, "--store", url, "--json"]);
  assert.deepEqual(purge.json(), { namePrefix: taskName, finishedTasks: 40, deadLetters: 0 });
  assert.equal((await cli(["tasks", "--root", root, "--store", url, "--json"])).json().total, 0);
});

test("scratchStoreFor(postgres): drop() removes the scratch schema and everything in it, and is idempotent", { skip: skipPg }, async () => {
  const { url } = pgSchemaUrl("rm_bench");
  const scratch = scratchStoreFor(url, "/tmp/unused");
  const schema = new URL(scratch.url).searchParams.get("schema")!;
  const base = new URL(PG_URL!);
  base.search = "";
  const client = new pg.Client({ connectionString: base.toString() });
  await client.connect();
  try {
    await client.query(`CREATE SCHEMA "${schema}"`);
    await client.query(`CREATE TABLE "${schema}".tasks (id int)`);
  } finally {
    await client.end();
  }
  assert.equal(await postgresSchemaExists(scratch.url, schema), true);
  await scratch.drop();
  await scratch.drop();
  assert.equal(await postgresSchemaExists(scratch.url, schema), false);
});
