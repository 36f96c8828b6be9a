import type { WireError } from "../errors.js";
import type { ScriptAgentConfig } from "../agents/scripts.js";

/** How a worker thread finds the code of an agent. */
export type AgentRef =
  | { kind: "builtin"; name: string }
  | { kind: "module"; module: string; exportName: string }
  | { kind: "script"; config: ScriptAgentConfig };

/** One step attempt, as a worker thread runs it. */
export interface StepRun {
  /** Names this attempt in abort and result messages: `${stepRowId}:${leaseEpoch}`. */
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
 * Main thread → worker thread: run several attempts at once. The reply carries the results of
 * those that settled by the next turn of the thread's event loop; the others are posted one by
 * one on `resultChannel` as they settle, so a slow attempt never holds back a fast one.
 */
export interface RunBatchMessage {
  type: "run-batch";
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

/** Worker thread → main thread, over the result BroadcastChannel: an attempt of a batch settled late. */
export interface LateResultMessage {
  type: "step-result";
  key: string;
  result: StepResultMessage;
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
