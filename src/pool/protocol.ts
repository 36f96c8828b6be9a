import type { WireError } from "../errors.js";

/** How a worker thread finds the code of an agent. */
export type AgentRef =
  | { kind: "builtin"; name: string }
  | { kind: "module"; module: string; exportName: string };

/** Main thread → worker thread: run one step attempt. */
export interface RunStepMessage {
  type: "run-step";
  /** Names this attempt in abort messages: `${stepRowId}:${leaseEpoch}`. */
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
  /** BroadcastChannel on which aborts for this engine arrive. */
  controlChannel: string;
}

/** Worker thread → main thread: the outcome of one attempt. */
export type StepResultMessage =
  | { type: "result"; outputJson: string }
  | { type: "error"; error: WireError; retryable: boolean; retryDelayMs: number | null };

/** Main thread → worker threads, over the control BroadcastChannel. */
export type ControlMessage = { type: "abort"; key: string; error: WireError };
