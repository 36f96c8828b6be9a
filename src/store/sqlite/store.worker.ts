import { parentPort, workerData } from "node:worker_threads";
import { errorToWire } from "../../errors.js";
import { SqliteStore } from "./store.js";
import type { StoreReply, StoreRequest, StoreThreadData } from "./thread-protocol.js";

// The store thread: owns the better-sqlite3 connection, so statements and fsyncs never block the
// main thread's event loop. Requests run strictly in arrival order (each method's work is
// synchronous), which keeps the order the main thread committed in.
const port = parentPort!;
const { options } = workerData as StoreThreadData;
const post = (reply: StoreReply) => port.postMessage(reply);

let store: SqliteStore;
try {
  store = SqliteStore.open(options);
  post({ type: "ready" });
} catch (error) {
  post({ type: "open-failed", error: errorToWire(error) });
  process.exit(0);
}

port.on("message", (req: StoreRequest) => {
  const run = (store[req.method] as (...a: unknown[]) => Promise<unknown>).apply(store, req.args);
  run.then(
    (value) => post({ type: "reply", id: req.id, ok: true, value }),
    (error: unknown) => post({ type: "reply", id: req.id, ok: false, error: errorToWire(error) }),
  );
});
