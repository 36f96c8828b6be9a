import { InvalidOptionsError } from "../../errors.js";

/** A parsed `postgres://` store URL; `password` never appears in `location`. */
export interface PgTarget {
  host: string;
  port: number;
  database: string;
  user: string;
  password: string | undefined;
  schema: string;
  /** The URL without its password, for messages and `init --json`. */
  location: string;
}

const SCHEMA = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

/**
 * Parses `postgres[ql]://user[:password]@host[:port]/database[?schema=NAME]` (schema default
 * "relaymesh"; the password may also come from PGPASSWORD). Throws InvalidOptionsError naming
 * what is wrong, never echoing the password.
 */
export function parsePgUrl(url: string, env: NodeJS.ProcessEnv = process.env): PgTarget {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new InvalidOptionsError(`--store ${redactUrl(url)}: not a valid URL (expected postgres://user[:password]@host[:port]/database[?schema=NAME])`);
  }
  if (u.protocol !== "postgres:" && u.protocol !== "postgresql:") {
    throw new InvalidOptionsError(`--store ${redactUrl(url)}: expected a postgres:// or postgresql:// URL`);
  }
  const database = decodeURIComponent(u.pathname.replace(/^\//, ""));
  if (!database || database.includes("/")) throw new InvalidOptionsError(`--store ${redactUrl(url)}: the URL names no database (postgres://user@host/DATABASE)`);
  if (!u.hostname) throw new InvalidOptionsError(`--store ${redactUrl(url)}: the URL names no host`);
  for (const key of u.searchParams.keys()) {
    if (key !== "schema") throw new InvalidOptionsError(`--store ${redactUrl(url)}: unknown URL parameter "${key}" (only "schema" is accepted)`);
  }
  const schema = u.searchParams.get("schema") ?? "relaymesh";
  if (!SCHEMA.test(schema)) {
    throw new InvalidOptionsError(`--store ${redactUrl(url)}: schema "${schema}" must be 1-63 letters, digits or underscores, not starting with a digit`);
  }
  const port = u.port ? Number(u.port) : 5432;
  const user = decodeURIComponent(u.username) || env.PGUSER || "postgres";
  const password = u.password ? decodeURIComponent(u.password) : env.PGPASSWORD || undefined;
  const host = u.hostname.replace(/^\[(.*)\]$/, "$1");
  return {
    host, port, database, user, password, schema,
    location: `postgres://${encodeURIComponent(user)}@${u.host}/${encodeURIComponent(database)}?schema=${schema}`,
  };
}

/** A store URL without its password, for messages. */
export function redactUrl(url: string): string {
  return url.replace(/\/\/([^:/@]*):[^@]*@/, "//$1:***@");
}
