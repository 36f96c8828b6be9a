import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { InvalidOptionsError } from "../errors.js";
import { redact } from "./open.js";
import { dropPostgresSchema, POSTGRES_URL, scratchSchemaName, withSchema } from "./postgres/scratch.js";

/** A throwaway store for one benchmark run, beside a user's store, and how to remove it. */
export interface ScratchStore {
  /** Store URL to open. */
  url: string;
  /** For messages and reports (no password). */
  location: string;
  /** Removes the scratch store's data (the PostgreSQL schema; a SQLite file goes with its folder). Idempotent. */
  drop(): Promise<void>;
}

/**
 * A scratch store of the same kind as `url`: SQLite (no URL or `sqlite:`) → a new database file
 * in `scratchDir`; PostgreSQL → a new schema `<schema>_bench_<random>` of the same database,
 * created by the store when opened and dropped by `drop()`.
 */
export function scratchStoreFor(url: string | undefined, scratchDir: string): ScratchStore {
  if (url === undefined || url.startsWith("sqlite:")) {
    const path = join(scratchDir, "relaymesh.db");
    return { url: `sqlite:${path}`, location: `sqlite:${path}`, drop: async () => {} };
  }
  if (POSTGRES_URL.test(url)) {
    const schema = scratchSchemaName(url, randomBytes(4).toString("hex"));
    const scratchUrl = withSchema(url, schema);
    let dropped: Promise<void> | null = null;
    return { url: scratchUrl, location: redact(scratchUrl), drop: () => (dropped ??= dropPostgresSchema(url, schema)) };
  }
  throw new InvalidOptionsError(`--store ${redact(url)}: unknown store URL (expected "postgres://…" or "sqlite:<path>", or omit it for SQLite in the root)`);
}
