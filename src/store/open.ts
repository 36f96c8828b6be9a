import { InvalidOptionsError } from "../errors.js";
import type { Settings } from "../model/settings.js";
import { PostgresStore } from "./postgres/store.js";
import { redactUrl } from "./postgres/url.js";
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

