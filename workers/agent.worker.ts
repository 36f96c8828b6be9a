import { BroadcastChannel } from "node:worker_threads";
import { pathToFileURL } from "node:url";
import { BUILTIN_AGENTS } from "../src/agents/builtins.js";
import type { AgentFunction } from "../src/agents/context.js";
import { KvNamespace, type KvTransport } from "../src/agents/kv.js";
import { runOneShot } from "./script-runner.js";
import { MAX_TIMER_MS } from "../src/model/duration.js";
import { threadId } from "node:worker_threads";
import { ErrorCode, RelayMeshError, StepTimeoutError, errorFromWire, errorToWire, type WireError } from "../src/errors.js";
import type {
  AgentMessage, AgentRef, BatchStartedMessage, ControlMessage, ProcessGroupMessage, KvOp, LateResultMessage, RunBatchMessage, RunBatchReply, StepResultMessage, StepRun,
  ThreadTask, WarmUpReply,
} from "../src/pool/protocol.js";

// Piscina entry: runs one step attempt, or a batch of them, per call; several calls share a thread concurrently.
const running = new Map<string, AbortController>();
/** Aborts that arrived before their attempt started here (the main thread re-sends until it settles). */
const earlyAborts = new Map<string, { error: WireError; atMs: number }>();
/** kv requests sent to the supervisor, awaiting their reply on the control channel. */
const kvRequests = new Map<string, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();
let requestSeq = 0;
const channels = new Map<string, BroadcastChannel>();
const modules = new Map<string, Promise<AgentFunction>>();

function listen(name: string): void {
  if (channels.has(name)) return;
  const channel = new BroadcastChannel(name);
  channel.onmessage = (event) => {
    const msg = (event as { data: ControlMessage }).data;
    if (msg.type === "kv-reply") {
      const pending = kvRequests.get(msg.requestId);
      if (!pending) return; // another thread's request
      kvRequests.delete(msg.requestId);
      if (msg.reply.ok) pending.resolve(msg.reply.value);
      else pending.reject(errorFromWire(msg.reply.error));
      return;
    }
    const controller = running.get(msg.key);
    if (controller) return controller.abort(errorFromWire(msg.error, ErrorCode.ABORTED));
    const now = Date.now();
    for (const [key, early] of earlyAborts) if (now - early.atMs > 60_000) earlyAborts.delete(key);
    earlyAborts.set(msg.key, { error: msg.error, atMs: now });
  };
  (channel as unknown as { unref(): void }).unref();
  channels.set(name, channel);
}


function load(ref: AgentRef): AgentFunction | Promise<AgentFunction> {
  if (ref.kind === "builtin") {
    const builtin = BUILTIN_AGENTS.get(ref.name);
    if (!builtin) throw new RelayMeshError(ErrorCode.UNKNOWN_AGENT, `no built-in agent "${ref.name}"`);
    return builtin.fn;
  }
  if (ref.kind === "script") throw new RelayMeshError(ErrorCode.UNKNOWN_AGENT, `script agent "${ref.config.id}" is not a function`);
  const key = `${ref.module}#${ref.exportName}`;
  let loaded = modules.get(key);
  if (!loaded) {
    loaded = import(pathToFileURL(ref.module).href).then((mod: Record<string, unknown>) => {
      const fn = mod[ref.exportName];
      if (typeof fn !== "function") {
        throw new RelayMeshError(ErrorCode.UNKNOWN_AGENT, `module ${ref.module} has no function export "${ref.exportName}"`);
      }
      return fn as AgentFunction;
    });
    loaded.catch(() => modules.delete(key));
    modules.set(key, loaded);
  }
  return loaded;
}

const resultChannels = new Map<string, BroadcastChannel>();

function resultChannel(name: string): BroadcastChannel {
  let channel = resultChannels.get(name);
  if (!channel) {
    channel = new BroadcastChannel(name);
    (channel as unknown as { unref(): void }).unref();
    resultChannels.set(name, channel);
  }
  return channel;
}

export default function handle(msg: ThreadTask): Promise<RunBatchReply | WarmUpReply> {
  listen(msg.controlChannel);
  if (msg.type === "run-batch") return runBatch(msg);
  resultChannel(msg.resultChannel);
  return Promise.resolve({ type: "warm", threadId });
}

/** How an attempt talks to its supervisor: heartbeats, progress, and kv requests answered on the control channel. */
function supervisorLink(channel: string, key: string) {
  const post = (m: AgentMessage) => resultChannel(channel).postMessage(m);
  const request = (op: KvOp) => new Promise<unknown>((resolve, reject) => {
    const requestId = `${threadId}:${++requestSeq}`;
    kvRequests.set(requestId, { resolve, reject });
    post({ type: "agent-kv", key, requestId, op });
  });
  const transport: KvTransport = {
    get: async (namespace, k) => (await request({ kind: "get", namespace, key: k })) as { found: boolean; value?: unknown },
    getAll: async (namespace) => (await request({ kind: "get-all", namespace })) as Record<string, unknown>,
    write: async (namespace, entries) => { await request({ kind: "write", namespace, entries }); },
  };
  return {
    transport,
    heartbeat: () => post({ type: "agent-heartbeat", key }),
    progress: (pct: number, message: string | null) => post({ type: "agent-progress", key, pct, message }),
  };
}

/** Replies with every result when all settled by the next turn of the event loop; else posts them as they settle and replies at the end. */
async function runBatch(msg: RunBatchMessage): Promise<RunBatchReply> {
  const n = msg.steps.length;
  const results: (StepResultMessage | null)[] = new Array<StepResultMessage | null>(n).fill(null);
  let left = n;
  let posting = false;
  let allSettled: () => void = () => {};
  const settledAll = new Promise<void>((resolve) => { allSettled = resolve; });
  const post = (late: LateResultMessage["results"]) => {
    const message: LateResultMessage = { type: "step-results", results: late };
    resultChannel(msg.resultChannel).postMessage(message);
  };
  if (msg.announce) {
    const started: BatchStartedMessage = { type: "batch-started", batchId: msg.batchId, threadId };
    resultChannel(msg.resultChannel).postMessage(started);
  }
  for (let i = 0; i < n; i++) {
    const step = msg.steps[i]!;
    void runStep(step, msg.resultChannel).then((result) => {
      if (posting) post([{ key: step.key, result }]);
      else results[i] = result;
      if (--left === 0) allSettled();
    });
  }
  if (left > 0 && msg.lateResults) {
    await Promise.race([settledAll, new Promise<void>((resolve) => setImmediate(resolve))]);
    if (left > 0) {
      posting = true;
      const early = msg.steps.flatMap((step, i) => (results[i] ? [{ key: step.key, result: results[i]! }] : []));
      if (early.length > 0) post(early);
      results.fill(null);
    }
  }
  await settledAll;
  return { type: "batch-results", results };
}

/** Never rejects: whatever the agent does (throws a non-Error, returns a BigInt or a cycle) becomes a result. */
async function runStep(msg: StepRun, channel: string): Promise<StepResultMessage> {
  const controller = new AbortController();
  running.set(msg.key, controller);
  let timer: NodeJS.Timeout | undefined;
  const early = earlyAborts.get(msg.key);
  if (early) {
    earlyAborts.delete(msg.key);
    controller.abort(errorFromWire(early.error, ErrorCode.ABORTED));
  }
  try {
    controller.signal.throwIfAborted();
    const payload = JSON.parse(msg.payloadJson) as { input: unknown; deps: Record<string, unknown>; kv: Record<string, unknown>; deadlineMs?: number };
    const link = supervisorLink(channel, msg.key);
    if (msg.timeoutMs !== null) {
      const ms = msg.timeoutMs;
      timer = setTimeout(() => controller.abort(new StepTimeoutError(`step "${msg.stepId}" timed out after ${ms} ms`)), ms);
    }
    if (msg.agent.kind === "script") {
      return await runOneShot(msg.agent.config, {
        taskId: msg.taskId, stepId: msg.stepId, attempt: msg.attempt, input: payload.input, deps: payload.deps,
        traceparent: msg.traceparent, kv: payload.kv, deadlineMs: payload.deadlineMs,
      }, {
        signal: controller.signal,
        heartbeat: link.heartbeat,
        progress: link.progress,
        checkpoint: (key, value) => link.transport.write(msg.taskId, [{ key, valueJson: JSON.stringify(value ?? null) }]),
        group: (pid, running) => {
          const m: ProcessGroupMessage = { type: "process-group", threadId, pid, running };
          resultChannel(channel).postMessage(m);
        },
      }, { maxPayloadBytes: msg.maxPayloadBytes, killGraceMs: msg.killGraceMs });
    }
    const fn = await load(msg.agent);
    let output = fn({
      input: payload.input, deps: payload.deps, signal: controller.signal, attempt: msg.attempt,
      taskId: msg.taskId, stepId: msg.stepId, traceparent: msg.traceparent, deadlineMs: payload.deadlineMs ?? null,
      kv: new KvNamespace(msg.taskId, link.transport, { maxValueBytes: msg.maxPayloadBytes }),
      heartbeat: link.heartbeat,
      progress: (pct, message) => link.progress(pct, message ?? null),
    });
    if (isThenable(output)) output = await abortable(Promise.resolve(output), controller.signal);
    return encode(output, msg.maxPayloadBytes);
  } catch (error) {
    return classify(error);
  } finally {
    if (timer) clearTimeout(timer);
    running.delete(msg.key);
  }
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (typeof value === "object" || typeof value === "function") && value !== null && typeof (value as { then?: unknown }).then === "function";
}

/** Settles with the agent, or as soon as the signal fires (an agent that ignores it is left behind). */
function abortable<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) {
    promise.catch(() => {}); // the agent's own rejection is expected now: never an unhandled one
    return Promise.reject(signal.reason);
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (v) => { signal.removeEventListener("abort", onAbort); resolve(v); },
      (e) => { signal.removeEventListener("abort", onAbort); reject(e); },
    );
  });
}

function encode(output: unknown, maxPayloadBytes: number): StepResultMessage {
  let outputJson: string;
  try {
    outputJson = JSON.stringify(output === undefined ? null : output);
  } catch (cause) {
    return classify(new RelayMeshError(ErrorCode.NON_RETRYABLE, `output is not JSON-serialisable: ${(cause as Error).message}`));
  }
  if (outputJson.length > maxPayloadBytes / 4 && Buffer.byteLength(outputJson) > maxPayloadBytes) {
    return classify(new RelayMeshError(ErrorCode.NON_RETRYABLE,
      `output is ${Buffer.byteLength(outputJson)} bytes, over maxPayloadBytes (${maxPayloadBytes})`));
  }
  return { type: "result", outputJson };
}

function classify(error: unknown): StepResultMessage {
  const wire = errorToWire(error);
  if (wire.stack && wire.stack.length > 4096) wire.stack = wire.stack.slice(0, 4096);
  const retryable = wire.code !== ErrorCode.NON_RETRYABLE && wire.code !== ErrorCode.UNKNOWN_AGENT;
  const delay = (wire.details as { delayMs?: unknown } | undefined)?.delayMs;
  const retryDelayMs = wire.code === ErrorCode.RETRY_LATER && typeof delay === "number" && delay >= 0 ? Math.min(delay, MAX_TIMER_MS) : null;
  return { type: "error", error: wire, retryable, retryDelayMs };
}
