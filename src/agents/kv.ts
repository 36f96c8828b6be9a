import { ErrorCode, RelayMeshError } from "../errors.js";
import { MAX_JSON_DEPTH, nestsDeeperThan } from "../model/problems.js";

/** Where a KvNamespace reads and writes: the store (main thread) or the supervisor over a channel (agents). */
export interface KvTransport {
  get(namespace: string, key: string): Promise<{ found: boolean; value?: unknown }>;
  getAll(namespace: string): Promise<Record<string, unknown>>;
  /** Writes atomically; `valueJson: null` deletes. Agents' writes are fenced by their lease. */
  write(namespace: string, entries: { key: string; valueJson: string | null }[]): Promise<void>;
}

export interface KvLimits {
  maxValueBytes: number;
}

const MAX_KEY_LENGTH = 512;

/**
 * A namespace of the durable checkpoint store. Values are JSON. In an agent (`ctx.kv`) the
 * default namespace is the task's own, and every write is fenced by the attempt's lease epoch:
 * a write after the lease moved on is refused with RELAYMESH_ERR_LEASE_LOST.
 */
export class KvNamespace {
  readonly name: string;
  readonly #transport: KvTransport;
  readonly #limits: KvLimits;

  constructor(name: string, transport: KvTransport, limits: KvLimits) {
    this.name = checkName("namespace", name);
    this.#transport = transport;
    this.#limits = limits;
  }

  /** Another (shared) namespace, with the same fencing. */
  namespace(name: string): KvNamespace {
    return new KvNamespace(name, this.#transport, this.#limits);
  }

  async get<T = unknown>(key: string): Promise<T | undefined> {
    const r = await this.#transport.get(this.name, checkName("key", key));
    return r.found ? (r.value as T) : undefined;
  }

  async exists(key: string): Promise<boolean> {
    return (await this.#transport.get(this.name, checkName("key", key))).found;
  }

  async getAll(): Promise<Record<string, unknown>> {
    return this.#transport.getAll(this.name);
  }

  async put(key: string, value: unknown): Promise<void> {
    await this.#transport.write(this.name, [this.#entry(key, value)]);
  }

  /** Writes several keys in one transaction. */
  async putBatch(entries: Record<string, unknown> | Iterable<[string, unknown]>): Promise<void> {
    const list = Symbol.iterator in entries ? [...(entries as Iterable<[string, unknown]>)] : Object.entries(entries);
    await this.#transport.write(this.name, list.map(([k, v]) => this.#entry(k, v)));
  }

  async delete(key: string): Promise<void> {
    await this.#transport.write(this.name, [{ key: checkName("key", key), valueJson: null }]);
  }

  /** The value as an integer; `fallback` when absent; throws when it is not an integer. */
  async getInt(key: string, fallback?: number): Promise<number | undefined> {
    return this.#typed(key, fallback, (v): v is number => Number.isInteger(v), "an integer");
  }

  async getNumber(key: string, fallback?: number): Promise<number | undefined> {
    return this.#typed(key, fallback, (v): v is number => typeof v === "number" && Number.isFinite(v), "a number");
  }

  async getBool(key: string, fallback?: boolean): Promise<boolean | undefined> {
    return this.#typed(key, fallback, (v): v is boolean => typeof v === "boolean", "a boolean");
  }

  async #typed<T>(key: string, fallback: T | undefined, is: (v: unknown) => v is T, what: string): Promise<T | undefined> {
    const value = await this.get(key);
    if (value === undefined) return fallback;
    if (!is(value)) throw new RelayMeshError(ErrorCode.INVALID_INPUT, `kv ${this.name}/${key} holds ${JSON.stringify(value)?.slice(0, 80)}, not ${what}`);
    return value;
  }

  #entry(key: string, value: unknown): { key: string; valueJson: string } {
    if (value === undefined) throw new RelayMeshError(ErrorCode.INVALID_INPUT, `kv ${this.name}/${key}: undefined is not a JSON value (use delete)`);
    if (nestsDeeperThan(value, MAX_JSON_DEPTH)) {
      throw new RelayMeshError(ErrorCode.INVALID_INPUT, `kv ${this.name}/${key}: value nests deeper than ${MAX_JSON_DEPTH} levels of arrays and objects (the limit)`);
    }
    let valueJson: string;
    try {
      valueJson = JSON.stringify(value);
    } catch (cause) {
      throw new RelayMeshError(ErrorCode.INVALID_INPUT, `kv ${this.name}/${key}: value is not JSON-serialisable`, { cause });
    }
    const bytes = Buffer.byteLength(valueJson);
    if (bytes > this.#limits.maxValueBytes) {
      throw new RelayMeshError(ErrorCode.INVALID_INPUT, `kv ${this.name}/${key}: value is ${bytes} bytes, over the limit of ${this.#limits.maxValueBytes}`);
    }
    return { key: checkName("key", key), valueJson };
  }
}

function checkName(what: string, name: string): string {
  if (typeof name !== "string" || name.length === 0 || name.length > MAX_KEY_LENGTH) {
    throw new RelayMeshError(ErrorCode.INVALID_INPUT, `kv ${what} must be a non-empty string of at most ${MAX_KEY_LENGTH} characters`);
  }
  return name;
}
