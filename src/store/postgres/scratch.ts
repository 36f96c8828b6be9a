import pg from "pg";
import { parsePgUrl } from "./url.js";

/** `postgres://` or `postgresql://`. */
export const POSTGRES_URL = /^postgres(ql)?:\/\//;

/** The URL with its `schema` parameter set to `schema`. */
export function withSchema(url: string, schema: string): string {
  const u = new URL(url);
  u.searchParams.set("schema", schema);
  return u.toString();
}

/** `<schema>_bench_<suffix>`, shortened to PostgreSQL's 63-byte identifier limit. Throws InvalidOptionsError for a bad URL. */
export function scratchSchemaName(url: string, suffix: string): string {
  const tail = `_bench_${suffix}`;
  return `${parsePgUrl(url).schema.slice(0, 63 - tail.length)}${tail}`;
}

/** Connection settings of a store URL, with the store's own defaults. */
function clientConfig(url: string): pg.ClientConfig {
  const t = parsePgUrl(url);
  return { host: t.host, port: t.port, database: t.database, user: t.user, ...(t.password !== undefined ? { password: t.password } : {}) };
}

/** Drops `schema` and everything in it, when it exists. */
export async function dropPostgresSchema(url: string, schema: string): Promise<void> {
  const client = new pg.Client(clientConfig(url));
  await client.connect();
  try {
    await client.query(`DROP SCHEMA IF EXISTS ${quoteIdent(schema)} CASCADE`);
  } finally {
    await client.end();
  }
}

/** Whether `schema` exists in the database of `url`. */
export async function postgresSchemaExists(url: string, schema: string): Promise<boolean> {
  const client = new pg.Client(clientConfig(url));
  await client.connect();
  try {
    const r = await client.query("SELECT 1 FROM pg_namespace WHERE nspname = $1", [schema]);
    return r.rowCount === 1;
  } finally {
    await client.end();
  }
}

function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}
