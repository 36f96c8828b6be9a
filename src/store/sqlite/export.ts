import Database from "better-sqlite3";
import { StoreError } from "../../errors.js";
import { exportTables, type ExportOptions, type RowPage } from "../tables.js";

/** Rows per page of a logical export. */
export const EXPORT_PAGE_ROWS = 1_000;

/**
 * The logical export of the SQLite database at `path` (see Store.exportRows): each table (all of
 * EXPORT_TABLES unless `options.tables`) read by key in pages, each handed to `sink` before the next is read. A read-only
 * connection of its own holds one read transaction for the whole export, so the pages come from
 * one consistent snapshot while writers go on (WAL), at most one page is in memory however large
 * the store, and the store's own connection stays free for its writers.
 */
export async function exportSqliteFile(path: string, sink: (page: RowPage) => Promise<void> | void, options: ExportOptions = {}): Promise<Record<string, number>> {
  const read = <T>(fn: () => T): T => {
    try {
      return fn();
    } catch (cause) {
      throw new StoreError(`SQLite exportRows failed on ${path}: ${(cause as Error).message}`, { cause });
    }
  };
  const db = read(() => new Database(path, { readonly: true, fileMustExist: true }));
  try {
    read(() => {
      db.pragma("busy_timeout = 5000");
      db.exec("BEGIN");
    });
    const counts: Record<string, number> = {};
    for (const t of exportTables(options)) {
      const keys = t.key.join(", ");
      const first = read(() => db.prepare(`SELECT * FROM ${t.name} ORDER BY ${keys} LIMIT ?`));
      const next = read(() => db.prepare(`SELECT * FROM ${t.name} WHERE (${keys}) > (${t.key.map(() => "?").join(", ")}) ORDER BY ${keys} LIMIT ?`));
      let after: unknown[] | null = null;
      let n = 0;
      for (;;) {
        const rows = read(() => (after ? next.all(...after, EXPORT_PAGE_ROWS) : first.all(EXPORT_PAGE_ROWS)) as Record<string, unknown>[]);
        if (rows.length === 0) break;
        for (const row of rows) for (const b of t.booleans) row[b] = row[b] === 1;
        n += rows.length;
        await sink({ table: t.name, rows });
        if (rows.length < EXPORT_PAGE_ROWS) break;
        const last = rows[rows.length - 1]!;
        after = t.key.map((k) => last[k]);
      }
      counts[t.name] = n;
    }
    read(() => db.exec("COMMIT"));
    return counts;
  } finally {
    db.close();
  }
}
