import { InvalidOptionsError } from "../errors.js";
import type { Settings } from "../model/settings.js";
import { PostgresStore } from "./postgres/store.js";
import { parsePgUrl, redactUrl } from "./postgres/url.js";
import { SqliteStore } from "./sqlite/store.js";
import type { Store } from "./store.js";

/**
 * Opens and migrates the store named by `url`: undefined (or "sqlite:<path>") for SQLite, by
 * default the root's relaymesh.db; "postgres://…" or "postgresql://…" for PostgreSQL, with a
 * pool of `concurrency + 2` connections (plus one LISTEN connection once the engine works).
 */
export async function openStore(url: string | undefined, defaultSqlitePath: string, settings: Settings, options: { concurrency?: number } = {}): Promise<Store> {
  let store: Store;
  if (url === undefined || url.startsWith("sqlite:")) {
    const path = url === undefined ? defaultSqlitePath : url.slice("sqlite:".length);
    store = SqliteStore.open({ path, durability: settings.durability });
  } else if (/^postgres(ql)?:\/\//.test(url)) {
    store = PostgresStore.open({ url, poolSize: (options.concurrency ?? 4) + 2 });
  } else {
    throw new InvalidOptionsError(`--store ${redact(url)}: unknown store URL (expected "postgres://…" or "sqlite:<path>", or omit it for SQLite in the root)`);
  }
  try {
    await store.migrate();
  } catch (error) {
    await store.close();
    throw error;
  }
  return store;
}

/** A store URL without its password, for messages. */
export const redact = redactUrl;

/**
 * A store beside `url` for scratch work (benchmarks): on PostgreSQL the same database with
 * schema `<schema>_<tag>`; undefined `url` (SQLite) gives a file in `sqliteDir`.
 */
export function scratchStoreUrl(url: string | undefined, tag: string, sqliteDir: string): string {
  if (url === undefined || url.startsWith("sqlite:")) return `sqlite:${sqliteDir}/relaymesh.db`;
  if (!/^postgres(ql)?:\/\//.test(url)) throw new InvalidOptionsError(`--store ${redact(url)}: unknown store URL`);
  const u = new URL(url);
  u.searchParams.set("schema", `${parsePgUrl(url).schema}_${tag}`.slice(0, 63));
  return u.toString();
}

/** Removes a scratch store made by scratchStoreUrl: drops the PostgreSQL schema (a SQLite file goes with its folder). */
export async function dropScratchStore(url: string): Promise<void> {
  if (/^postgres(ql)?:\/\//.test(url)) await PostgresStore.dropSchema(url);
}
