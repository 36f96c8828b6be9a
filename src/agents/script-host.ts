import { StepTimeoutError, errorFromWire } from "../errors.js";
import type { KvOp, KvReply, StepResultMessage, StepRun } from "../pool/protocol.js";
import { PersistentScriptAgent } from "./persistent.js";
import type { ScriptAgentConfig } from "./scripts.js";

/** How an attempt reaches its supervisor (the same messages a worker thread sends). */
export interface AttemptLink {
  heartbeat(): void;
  progress(pct: number, message: string | null): void;
  kv(op: KvOp): Promise<KvReply>;
}

/**
 * Hosts the persistent script agents of a node on the supervisor's thread: their processes
 * are started once, on first use, and only do asynchronous I/O here.
 */
export class PersistentScriptHost {
  readonly #agents = new Map<string, PersistentScriptAgent>();
  readonly #limits: { maxPayloadBytes: number; killGraceMs: number };

  constructor(limits: { maxPayloadBytes: number; killGraceMs: number }) {
    this.#limits = limits;
  }

  /** Runs one attempt on the agent's instances; aborts (timeout, cancel, shutdown) reach it through `signal`. */
  async run(config: ScriptAgentConfig, run: StepRun, link: AttemptLink, signal: AbortSignal): Promise<StepResultMessage> {
    let agent = this.#agents.get(config.id);
    if (!agent) {
      agent = new PersistentScriptAgent(config, this.#limits);
      this.#agents.set(config.id, agent);
    }
    const controller = new AbortController();
    const forward = () => controller.abort(signal.reason);
    if (signal.aborted) forward();
    else signal.addEventListener("abort", forward, { once: true });
    const timer = run.timeoutMs === null ? null
      : setTimeout(() => controller.abort(new StepTimeoutError(`step "${run.stepId}" timed out after ${run.timeoutMs} ms`)), run.timeoutMs);
    try {
      const payload = JSON.parse(run.payloadJson) as { input: unknown; deps: Record<string, unknown>; kv: Record<string, unknown>; deadlineMs?: number };
      return await agent.run({
        taskId: run.taskId, stepId: run.stepId, attempt: run.attempt, input: payload.input, deps: payload.deps,
        traceparent: run.traceparent, kv: payload.kv, deadlineMs: payload.deadlineMs,
      }, {
        signal: controller.signal,
        heartbeat: link.heartbeat,
        progress: link.progress,
        checkpoint: async (key, value) => {
          const reply = await link.kv({ kind: "write", namespace: run.taskId, entries: [{ key, valueJson: JSON.stringify(value ?? null) }] });
          if (!reply.ok) throw errorFromWire(reply.error);
        },
      });
    } finally {
      if (timer) clearTimeout(timer);
      signal.removeEventListener("abort", forward);
    }
  }

  /** Ends every instance; pending requests fail as aborted. */
  async close(): Promise<void> {
    const agents = [...this.#agents.values()];
    this.#agents.clear();
    await Promise.all(agents.map((a) => a.close()));
  }
}
