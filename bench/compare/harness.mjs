// The four workloads of `npm run bench:compare`, written once and driven through one adapter per
// system, so every system is measured by the same code.
//
// An adapter: { open({ work }), start(), submit(shape, input) → Promise<id>, onFinished(fn(id)),
// settled?(), close() }. `submit` resolves when the system acknowledged the submission; `onFinished`
// fires when a workflow's last step completed; `settled` (optional) resolves once the system's
// store agrees that everything finished (graphile-worker reports completions before writing them).
import { performance } from "node:perf_hooks";
import { percentile, sortedAscending } from "../../dist/src/bench/stats.js";

export const CONCURRENCY = 8;
export const INPUT = "x".repeat(64);

export const SIZES = {
  full: { w1: 10_000, w2: 1_000, w3: 500, w4Rate: 200, w4Seconds: 10 },
  quick: { w1: 1_000, w2: 200, w3: 100, w4Rate: 200, w4Seconds: 2 },
};

/** A workflow failed: the run measures nothing, so the child ends without a result. */
export function fatal(message) {
  process.stderr.write(`${message}\n`);
  process.exit(1);
}

/** Workload id → how it runs. */
export const WORKLOADS = {
  W1: { shape: "single", title: "enqueue N one-step tasks (8 in flight), then drain", run: (a, z) => enqueueThenDrain(a, z.w1) },
  W2: { shape: "chain", title: "chains A→B→C submitted to a running system, 8 in flight", run: (a, z) => closedLoop(a, "chain", z.w2) },
  W3: { shape: "diamond", title: "diamonds A→(B,C)→D submitted to a running system, 8 in flight", run: (a, z) => closedLoop(a, "diamond", z.w3) },
  W4: { shape: "single", title: "one-step tasks offered open loop at a fixed rate", run: (a, z) => openLoop(a, z.w4Rate, z.w4Seconds) },
};

/** Tracks submissions and finishes by id; a finish may arrive before its submit call returns. */
class Tracker {
  started = new Map();
  early = new Map();
  latencies = [];
  firstSubmitAt = 0;
  lastFinishAt = 0;
  finished = 0;
  expected = Infinity;
  #wake = null;

  constructor(adapter) {
    adapter.onFinished((id) => this.#finish(id, performance.now()));
  }

  async submit(adapter, shape) {
    const at = performance.now();
    if (this.firstSubmitAt === 0) this.firstSubmitAt = at;
    const id = await adapter.submit(shape, INPUT);
    const early = this.early.get(id);
    if (early !== undefined) { this.early.delete(id); this.#record(at, early); } else this.started.set(id, at);
  }

  #finish(id, at) {
    const s = this.started.get(id);
    if (s === undefined) { this.early.set(id, at); return; }
    this.started.delete(id);
    this.#record(s, at);
  }

  #record(startedAt, at) {
    this.latencies.push(at - startedAt);
    this.finished++;
    this.lastFinishAt = Math.max(this.lastFinishAt, at);
    if (this.finished >= this.expected) this.#wake?.();
  }

  /** Resolves when `n` finished, or rejects past `timeoutMs` naming how many did. */
  all(n, timeoutMs) {
    this.expected = n;
    if (this.finished >= n) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`only ${this.finished} of ${n} finished within ${timeoutMs / 1000} s`)), timeoutMs);
      this.#wake = () => { clearTimeout(timer); resolve(); };
    });
  }

  latency() {
    const s = sortedAscending(this.latencies);
    return { p50: percentile(s, 50), p99: percentile(s, 99) };
  }
}

async function inFlight(count, limit, fn) {
  let next = 0;
  const worker = async () => { while (next < count) { next++; await fn(); } };
  await Promise.all(Array.from({ length: Math.min(limit, count) }, worker));
}

const TIMEOUT_MS = 300_000;

/** W1: submit everything with the workers stopped, then start them; drain throughput. */
async function enqueueThenDrain(adapter, n) {
  await adapter.open({ work: false });
  const t = new Tracker(adapter);
  const e0 = performance.now();
  await inFlight(n, CONCURRENCY, () => t.submit(adapter, "single"));
  const e1 = performance.now();
  const d0 = performance.now();
  await adapter.start();
  await t.all(n, TIMEOUT_MS);
  const end = adapter.settled ? Math.max(t.lastFinishAt, await adapter.settled()) : t.lastFinishAt;
  return { enqueuePerSec: n / ((e1 - e0) / 1000), drainPerSec: n / ((end - d0) / 1000) };
}

/** W2/W3: the system is working; `CONCURRENCY` submissions in flight; clock from the first submit. */
async function closedLoop(adapter, shape, n) {
  await adapter.open({ work: true });
  const t = new Tracker(adapter);
  await inFlight(n, CONCURRENCY, () => t.submit(adapter, shape));
  await t.all(n, TIMEOUT_MS);
  const end = adapter.settled ? Math.max(t.lastFinishAt, await adapter.settled()) : t.lastFinishAt;
  return { perSec: n / ((end - t.firstSubmitAt) / 1000), ...t.latency() };
}

/** W4: task i is submitted at i / rate seconds whether or not earlier ones were acknowledged. */
async function openLoop(adapter, rate, seconds) {
  await adapter.open({ work: true });
  const t = new Tracker(adapter);
  const n = rate * seconds;
  const pending = [];
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const wait = t0 + (i * 1000) / rate - performance.now();
    if (wait >= 1) await new Promise((r) => setTimeout(r, wait));
    pending.push(t.submit(adapter, "single"));
  }
  await Promise.all(pending);
  await t.all(n, TIMEOUT_MS);
  const elapsed = (t.lastFinishAt - t0) / 1000;
  return { achievedPerSec: n / elapsed, ...t.latency() };
}
