import { randomUUID } from "node:crypto";
import pg from "pg";

export interface WakeChannelOptions {
  config: pg.ClientConfig;
  /** The NOTIFY channel of one schema. */
  channel: string;
  /** Where hints are sent from (outside any transaction). */
  pool: pg.Pool;
  onError: (error: Error) => void;
}

/** At most one NOTIFY per this many ms: a NOTIFY takes a database-wide lock at commit. */
const HINT_INTERVAL_MS = 20;
const RECONNECT_MIN_MS = 100;
const RECONNECT_MAX_MS = 5_000;

/**
 * "There may be new work" between processes: debounced NOTIFY out, one dedicated LISTEN
 * connection in (opened on the first subscriber, reconnected with backoff when lost). A hint
 * only: a lost one costs a poll interval, never a step.
 */
export class WakeChannel {
  readonly #o: WakeChannelOptions;
  readonly #listeners = new Set<() => void>();
  #client: pg.Client | null = null;
  #connecting = false;
  #backoffMs = RECONNECT_MIN_MS;
  #reconnectTimer: NodeJS.Timeout | null = null;
  #lastHintAt = 0;
  #hintTimer: NodeJS.Timeout | null = null;
  #closed = false;
  /** Sent with this channel's hints, so that it ignores its own. */
  readonly #token = randomUUID();

  constructor(options: WakeChannelOptions) {
    this.#o = options;
  }

  /** Sends a hint soon (debounced), on a pool connection. */
  hint(): void {
    if (this.#closed || this.#hintTimer) return;
    const wait = Math.max(0, this.#lastHintAt + HINT_INTERVAL_MS - Date.now());
    this.#hintTimer = setTimeout(() => {
      this.#hintTimer = null;
      this.#lastHintAt = Date.now();
      this.#o.pool.query("SELECT pg_notify($1, $2)", [this.#o.channel, this.#token]).catch(() => undefined);
    }, wait);
    this.#hintTimer.unref();
  }

  subscribe(listener: () => void): () => void {
    this.#listeners.add(listener);
    if (!this.#client && !this.#connecting) void this.#connect();
    return () => {
      this.#listeners.delete(listener);
      if (this.#listeners.size === 0) this.#disconnect();
    };
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#hintTimer) clearTimeout(this.#hintTimer);
    this.#listeners.clear();
    this.#disconnect();
  }

  async #connect(): Promise<void> {
    if (this.#closed || this.#listeners.size === 0) return;
    this.#connecting = true;
    const client = new pg.Client(this.#o.config);
    client.on("error", (error) => this.#lost(client, error));
    client.on("end", () => this.#lost(client, new Error("connection ended")));
    // A hint this channel sent is for the other nodes: this one knows its own work already.
    client.on("notification", (n) => { if (n.payload !== this.#token) for (const l of this.#listeners) l(); });
    try {
      await client.connect();
      await client.query(`LISTEN "${this.#o.channel}"`);
      this.#connecting = false;
      if (this.#closed || this.#listeners.size === 0) { client.end().catch(() => undefined); return; }
      this.#client = client;
      this.#backoffMs = RECONNECT_MIN_MS;
      // Work may have arrived while no one listened.
      for (const l of this.#listeners) l();
    } catch (error) {
      this.#connecting = false;
      client.end().catch(() => undefined);
      this.#lost(client, error as Error);
    }
  }

  #lost(client: pg.Client, error: Error): void {
    if (this.#client !== null && this.#client !== client) return;
    if (this.#client === client) this.#client = null;
    if (this.#closed || this.#listeners.size === 0 || this.#reconnectTimer) return;
    this.#o.onError(error);
    this.#reconnectTimer = setTimeout(() => { this.#reconnectTimer = null; void this.#connect(); }, this.#backoffMs);
    this.#reconnectTimer.unref();
    this.#backoffMs = Math.min(RECONNECT_MAX_MS, this.#backoffMs * 2);
  }

  #disconnect(): void {
    if (this.#reconnectTimer) clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = null;
    const client = this.#client;
    this.#client = null;
    client?.end().catch(() => undefined);
  }
}
