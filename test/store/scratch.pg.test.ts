import { test } from "node:test";
import assert from "node:assert/strict";
import pg from "pg";
import { scratchStoreFor } from "../../src/store/scratch.js";
import { postgresSchemaExists } from "../../src/store/postgres/scratch.js";

const PG_URL = process.env.RELAYMESH_PG_URL;

test("scratch PostgreSQL store: drop() removes its schema and everything in it, and is idempotent", { skip: PG_URL ? false : "RELAYMESH_PG_URL not set" }, async () => {
  const scratch = scratchStoreFor(`${PG_URL}${PG_URL!.includes("?") ? "&" : "?"}schema=benchtest`, "/tmp/unused");
  const schema = new URL(scratch.url).searchParams.get("schema")!;
  // What a store would have created in it (the PostgreSQL store creates its schema when missing).
  const client = new pg.Client({ connectionString: PG_URL });
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
