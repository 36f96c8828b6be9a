// PostgreSQL for tests: RELAYMESH_PG_URL names the server (CI always sets it); each caller gets a
// schema of its own, dropped afterwards.
import { randomBytes } from "node:crypto";
import pg from "pg";

/** The server's URL, or undefined when PostgreSQL tests are not configured. */
export const PG_URL = process.env.RELAYMESH_PG_URL || undefined;

/** Why a PostgreSQL test is skipped, or false when it runs. */
export const skipPg: string | false = PG_URL ? false : "RELAYMESH_PG_URL is not set";

/** A store URL on a fresh schema name (created by the store on first open) and its dropper. */
export function pgSchemaUrl(prefix = "rm_test"): { url: string; schema: string; drop(): Promise<void> } {
  if (!PG_URL) throw new Error("RELAYMESH_PG_URL is not set");
  const schema = `${prefix}_${randomBytes(6).toString("hex")}`;
  const u = new URL(PG_URL);
  u.searchParams.set("schema", schema);
  return {
    url: u.toString(), schema,
    async drop() {
      const base = new URL(PG_URL!);
      base.search = "";
      const client = new pg.Client({ connectionString: base.toString() });
      await client.connect();
      try {
        await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      } finally {
        await client.end();
      }
    },
  };
}
