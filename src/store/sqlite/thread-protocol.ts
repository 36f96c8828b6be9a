import type { WireError } from "../../errors.js";
import type { Store } from "../store.js";
import type { SqliteStoreOptions } from "./store.js";

/** The Store methods a store thread answers (everything but the synchronous members, and exportRows: read on the main thread). */
export type StoreMethod = Exclude<{ [K in keyof Store]-?: Store[K] extends (...args: never[]) => Promise<unknown> ? K : never }[keyof Store], "exportRows">;

/** Main thread → store thread: what the thread is started with. */
export interface StoreThreadData {
  options: SqliteStoreOptions;
}

/** Main thread → store thread: one Store call; calls run one after another, in the order sent. */
export type StoreRequest = { type: "call"; id: number; method: StoreMethod; args: unknown[] };

/** Store thread → main thread: the outcome of a request (`ready` once the file is open and configured). */
export type StoreReply =
  | { type: "ready" }
  | { type: "open-failed"; error: WireError }
  | { type: "reply"; id: number; ok: true; value: unknown }
  | { type: "reply"; id: number; ok: false; error: WireError };
