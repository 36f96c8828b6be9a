import { InvalidOptionsError } from "../errors.js";
import type { Settings } from "../model/settings.js";
import { redactUrl } from "./postgres/url.js";
import { SqliteStore } from "./sqlite/store.js";
import { SqliteThreadStore } from "./sqlite/thread-store.js";
import { migrateOrClose, type Store } from "./store.js";

/**
 * Opens and migrates the store named by `url`: undefined (or "sqlite:<path>") for SQLite, by
 * default the root's relaymesh.db — with `thread`, run on a store thread of its own (SqliteThreadStore),
 * so its statements and fsyncs never block the event loop of a process that works; "postgres://…" or "postgresql://…" for PostgreSQL, with a
 * pool of `concurrency + 2` connections (plus one LISTEN connection once the engine works).
 */
export async function openStore(url: string | undefined, defaultSqlitePath: string, settings: Settings, options: { concurrency?: number; thread?: boolean } = {}): Promise<Store> {
  let store: Store;
  if (url === undefined || url.startsWith("sqlite:")) {
    const path = url === undefined ? defaultSqlitePath : url.slice("sqlite:".length);
    const o = { path, durability: settings.durability };
    store = options.thread ? await SqliteThreadStore.open(o) : SqliteStore.open(o);
  } else if (/^postgres(ql)?:\/\//.test(url)) {
    // Loaded here: SQLite users never load pg.
    const { PostgresStore } = await import("./postgres/store.js");
    // A transaction left open by a node cut off mid-way holds its row locks no longer than a lease:
    // the steps it locked can be taken over once their leases end.
    const idleInTransactionTimeoutMs = Math.min(60_000, Math.max(1_000, settings.leaseTimeoutMs));
    store = PostgresStore.open({ url, poolSize: (options.concurrency ?? 4) + 2, idleInTransactionTimeoutMs });
  } else {
    throw new InvalidOptionsError(`--store ${redact(url)}: unknown store URL (expected "postgres://…" or "sqlite:<path>", or omit it for SQLite in the root)`);
  }
  return migrateOrClose(store);
}

/** A store URL without its password, for messages. */
export const redact = redactUrl;

