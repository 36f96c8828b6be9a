import type { WireError } from "../errors.js";
import type { ScriptAgentConfig } from "../agents/scripts.js";

/** How a worker thread finds the code of an agent. */
export type AgentRef =
  | { kind: "builtin"; name: string }
  | { kind: "module"; module: string; exportName: string }
  | { kind: "script"; config: ScriptAgentConfig };

/** One step attempt, as a worker thread runs it. */
export interface StepRun {
  /** Names this attempt in abort and result messages: `${stepKey}:${leaseEpoch}`. */
  key: string;
  taskId: string;
  stepId: string;
  attempt: number;
  agent: AgentRef;
  /** JSON text of `{ input, deps, kv }`. */
  payloadJson: string;
  timeoutMs: number | null;
  traceparent: string;
  maxPayloadBytes: number;
  /** 2 high, 1 normal, 0 low: orders thread messages waiting for a thread. */
  priority: number;
  /** Grace between SIGTERM and SIGKILL for script agents. */
  killGraceMs: number;
}

/**
 * Main thread → worker thread: run several attempts at once. When they all settle by the next
 * turn of the thread's event loop, the reply carries their results; otherwise the results are
 * posted on `resultChannel` as they settle (so a slow attempt never holds back a fast one) and
 * the reply, empty, comes once the last one settled: the task stays open while any attempt runs,
 * so the main thread can end a thread that stopped responding by aborting its task.
 */
export interface RunBatchMessage {
  type: "run-batch";
  /** Names the batch in its `batch-started` message. */
  batchId: number;
  /** Post `batch-started` before running anything: the batch runs code that could stop the thread responding (module agents). */
  announce: boolean;
  steps: StepRun[];
  controlChannel: string;
  resultChannel: string;
  /** False: reply only once every attempt settled (the thread may sleep between tasks: Piscina `atomics: "sync"`). */
  lateResults: boolean;
}

/** Main thread → worker thread: start up (open the channels) and say which thread answered. */
export interface WarmUpMessage {
  type: "warm-up";
  controlChannel: string;
  resultChannel: string;
}

/** Worker thread → main thread: the reply to a WarmUpMessage. */
export interface WarmUpReply {
  type: "warm";
  threadId: number;
}

/** What the Piscina entry is called with. */
export type ThreadTask = RunBatchMessage | WarmUpMessage;

/** Worker thread → main thread: the outcome of one attempt. */
export type StepResultMessage =
  | { type: "result"; outputJson: string }
  | { type: "error"; error: WireError; retryable: boolean; retryDelayMs: number | null };

/** Worker thread → main thread: the reply to a RunBatchMessage (`results[i]` null: it comes on the result channel). */
export interface RunBatchReply {
  type: "batch-results";
  results: (StepResultMessage | null)[];
}

/** Worker thread → main thread, over the result BroadcastChannel: which thread runs a batch (so it can be ended if it stops responding). */
export interface BatchStartedMessage {
  type: "batch-started";
  batchId: number;
  threadId: number;
}

/** Worker thread → main thread, over the result BroadcastChannel: a script agent's process group started or is gone. */
export interface ProcessGroupMessage {
  type: "process-group";
  threadId: number;
  pid: number;
  running: boolean;
}

/** Worker thread → main thread, over the result BroadcastChannel: attempts of a batch that settled after its first turn. */
export interface LateResultMessage {
  type: "step-results";
  results: { key: string; result: StepResultMessage }[];
}

/** What an agent asks of the store during an attempt; `null` valueJson deletes. */
export type KvOp =
  | { kind: "get"; namespace: string; key: string }
  | { kind: "get-all"; namespace: string }
  | { kind: "write"; namespace: string; entries: { key: string; valueJson: string | null }[] };

/** Worker thread → main thread, over the result BroadcastChannel: an agent talking to its supervisor. */
export type AgentMessage =
  | { type: "agent-heartbeat"; key: string }
  | { type: "agent-progress"; key: string; pct: number; message: string | null }
  | { type: "agent-kv"; key: string; requestId: string; op: KvOp };

/** The answer to an `agent-kv` request. */
export type KvReply = { ok: true; value: unknown } | { ok: false; error: WireError };

/** Main thread → worker threads, over the control BroadcastChannel. */
export type ControlMessage =
  | { type: "abort"; key: string; error: WireError }
  | { type: "kv-reply"; requestId: string; reply: KvReply };
