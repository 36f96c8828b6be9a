import type { WireError } from "../errors.js";

/** How a worker thread finds the code of an agent. */
export type AgentRef =
  | { kind: "builtin"; name: string }
  | { kind: "module"; module: string; exportName: string };

/** One step attempt, as a worker thread runs it. */
export interface StepRun {
  /** Names this attempt in abort and result messages: `${stepRowId}:${leaseEpoch}`. */
  key: string;
  taskId: string;
  stepId: string;
  attempt: number;
  agent: AgentRef;
  /** JSON text of `{ input, deps }`. */
  payloadJson: string;
  timeoutMs: number | null;
  traceparent: string;
  maxPayloadBytes: number;
}

/** Main thread → worker thread: run one step attempt. */
export interface RunStepMessage extends StepRun {
  type: "run-step";
  /** BroadcastChannel on which aborts for this engine arrive. */
  controlChannel: string;
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

/** Main thread → worker threads, over the control BroadcastChannel. */
export type ControlMessage = { type: "abort"; key: string; error: WireError };
