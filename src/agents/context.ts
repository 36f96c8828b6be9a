import type { KvNamespace } from "./kv.js";

/** What an agent function receives for one step attempt. */
export interface AgentContext<I = unknown> {
  /** The step's `input` from the workflow. */
  input: I;
  /** Outputs of the step's dependencies, by step id. */
  deps: Record<string, unknown>;
  /** Fires on timeout, hard cancel, shutdown or a lost lease; `signal.reason` says which. */
  signal: AbortSignal;
  /** 1 for the first attempt. */
  attempt: number;
  taskId: string;
  stepId: string;
  /** W3C traceparent of this attempt's span. */
  traceparent: string;
  /** The task's deadline (epoch ms): past it the task is cancelled and `signal` fires. Null when it has none. */
  deadlineMs: number | null;
  /** The task's durable checkpoints (writes fenced by this attempt's lease); `ctx.kv.namespace(name)` for shared ones. */
  kv: KvNamespace;
  /** Renews this attempt's lease now (long steps need not: the engine heartbeats for them). */
  heartbeat(): void;
  /** Records progress (0–100) on the step and emits `step:progress`. */
  progress(pct: number, message?: string): void;
}

/** An agent: returns the step's output (any JSON value) or throws. */
export type AgentFunction<I = unknown, O = unknown> = (ctx: AgentContext<I>) => O | Promise<O>;
