// Runs the compiled test files (dist/test/**/*.test.js) with node's test runner.
// Files are listed here rather than globbed by --test, whose argument syntax differs across Node versions.
// With RELAYMESH_PG_URL set, the engine and process tests run a second time on PostgreSQL
// (RELAYMESH_TEST_STORE=postgres: each root gets a schema of its own, all dropped after the run),
// and the *.serial.test.js files (which restart the shared server) run last, alone.
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { spawnSync } from "node:child_process";
import pg from "pg";

function find(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return find(path);
    return name.endsWith(".test.js") ? [path] : [];
  });
}

const filter = process.argv[2];
const all = find("dist/test").filter((f) => !filter || f.includes(filter)).sort();
if (all.length === 0) {
  console.error(`no test files found under dist/test${filter ? ` matching "${filter}"` : ""}; run "npm run build" first`);
  process.exit(1);
}
const serial = all.filter((f) => f.endsWith(".serial.test.js"));
const files = all.filter((f) => !serial.includes(f));
const pgUrl = process.env.RELAYMESH_PG_URL;
const onPg = { ...process.env, RELAYMESH_TEST_STORE: "postgres" };

const run = (list, env = process.env) =>
  list.length === 0 ? 0 : spawnSync(process.execPath, ["--test", "--test-reporter=spec", ...list], { stdio: "inherit", env }).status ?? 1;

let status = run(files);
if (pgUrl && process.env.RELAYMESH_TEST_STORE !== "postgres") {
  const again = files.filter((f) => /dist\/test\/(integration|process)\//.test(f));
  if (again.length > 0) {
    console.error(`\n# the engine and process tests again, on PostgreSQL (${again.length} files)`);
    const s = run(again, onPg);
    status = status || s;
  }
}
if (serial.length > 0) {
  const s = run(serial, pgUrl ? onPg : process.env);
  status = status || s;
}

if (pgUrl) {
  // Schemas of PostgreSQL test roots (test/helpers.ts storeFor) are dropped here, whatever happened.
  const base = new URL(pgUrl);
  base.search = "";
  const client = new pg.Client({ connectionString: base.toString() });
  try {
    await client.connect();
    const { rows } = await client.query(`SELECT nspname FROM pg_namespace WHERE nspname LIKE 'rm\\_t\\_%'`);
    for (const r of rows) await client.query(`DROP SCHEMA IF EXISTS "${r.nspname}" CASCADE`);
  } catch (error) {
    console.error(`could not drop the test schemas: ${error.message}`);
  } finally {
    await client.end().catch(() => {});
  }
}
process.exit(status);
