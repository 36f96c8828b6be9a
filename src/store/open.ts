import { InvalidOptionsError } from "../errors.js";
import type { Settings } from "../model/settings.js";
import { SqliteStore } from "./sqlite/store.js";
import type { Store } from "./store.js";

/**
 * Opens and migrates the store named by `url`: undefined (or "sqlite:<path>") for SQLite,
 * by default the root's relaymesh.db.
 */
export async function openStore(url: string | undefined, defaultSqlitePath: string, settings: Settings): Promise<Store> {
  let store: Store;
  if (url === undefined || url.startsWith("sqlite:")) {
    const path = url === undefined ? defaultSqlitePath : url.slice("sqlite:".length);
    store = SqliteStore.open({ path, durability: settings.durability });
  } else if (/^postgres(ql)?:\/\//.test(url)) {
    throw new InvalidOptionsError(`--store ${redact(url)}: the PostgreSQL store is not part of this build yet; use the embedded SQLite store (omit --store)`);
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
export function redact(url: string): string {
  return url.replace(/\/\/([^:/@]+):[^@]*@/, "//$1:***@");
}
