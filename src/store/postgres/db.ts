import type pg from "pg";

/** A connection of the pool, or the pool itself (one statement, any connection). */
export type Queryable = Pick<pg.PoolClient, "query">;

/**
 * Runs one statement of a named set as a prepared statement (parsed once per connection).
 * `name` must be unique across the store's statement sets.
 */
export async function run<R = Record<string, any>>(db: Queryable, name: string, text: string, values: unknown[] = []): Promise<R[]> {
  const result = await db.query({ name, text, values });
  return result.rows as R[];
}

/** Builds a typed runner over one set of named statements. */
export function statements<T extends Record<string, string>>(prefix: string, sql: T) {
  return <R = Record<string, any>>(db: Queryable, key: keyof T & string, values: unknown[] = []): Promise<R[]> =>
    run<R>(db, `${prefix}_${key}`, sql[key]!, values);
}

/** SQLSTATEs after which the whole transaction may simply be tried again. */
export const RETRYABLE_SQLSTATES: ReadonlySet<string> = new Set(["40001", "40P01", "55P03"]);

/** SQLSTATE classes of a lost or refused connection (server restart, network, admin shutdown). */
export function isConnectionError(error: unknown): boolean {
  const code = (error as { code?: unknown }).code;
  if (typeof code === "string" && (code.startsWith("08") || code === "57P01" || code === "57P02" || code === "57P03")) return true;
  const message = (error as Error).message ?? "";
  return /Connection terminated|ECONNREFUSED|ECONNRESET|EPIPE|connection timeout|Client has encountered a connection error/i.test(message);
}
