import { EventEmitter } from "node:events";
import type { WireError } from "./errors.js";
import type { LeaseConflict, TaskStatus } from "./store/types.js";

/** Events of a RelayMesh instance. Each has one object payload. */
export interface EngineEventMap {
  /** A task was accepted and committed (`created: false` for an idempotent repeat). */
  "task:submitted": { taskId: string; created: boolean };
  /** A step attempt was handed to an agent in this process. */
  "step:started": { taskId: string; stepId: string; agent: string; attempt: number; leaseEpoch: number };
  /** A running attempt reported progress (0–100). */
  "step:progress": { taskId: string; stepId: string; attempt: number; pct: number; message: string | null };
  /** Checkpoint keys were written or deleted by this process (committed). */
  "kv:changed": { namespace: string; keys: string[]; writer: string };
  /** A step attempt's success was committed. */
  "step:succeeded": { taskId: string; stepId: string; attempt: number; durationMs: number };
  /** A step attempt failed; `willRetry` false means it went to the dead letters. */
  "step:failed": { taskId: string; stepId: string; attempt: number; willRetry: boolean; retryAtMs: number | null; error: WireError };
  /** A task reached SUCCESS, DEAD_LETTER or CANCELLED (as committed by this process). */
  "task:finished": { taskId: string; status: TaskStatus };
  /** A write of this process was refused because the step's lease moved on. */
  "lease:conflict": LeaseConflict & { traceId: string | null; spanId: string | null };
  /** Expired leases were reclaimed by this process. */
  "lease:reclaimed": { count: number };
  /** A background error the engine survived (store busy, a listener threw…). */
  "engine:error": { error: Error };
  /** close() began. */
  "engine:closing": Record<string, never>;
}

export type EngineEventName = keyof EngineEventMap;

/** An EventEmitter typed by EngineEventMap. */
export class TypedEmitter<M extends { [K in keyof M]: object }> {
  readonly #emitter = new EventEmitter({ captureRejections: false });

  constructor() {
    this.#emitter.setMaxListeners(0);
  }

  on<K extends keyof M & string>(event: K, listener: (payload: M[K]) => void): this {
    this.#emitter.on(event, listener);
    return this;
  }

  once<K extends keyof M & string>(event: K, listener: (payload: M[K]) => void): this {
    this.#emitter.once(event, listener);
    return this;
  }

  off<K extends keyof M & string>(event: K, listener: (payload: M[K]) => void): this {
    this.#emitter.off(event, listener);
    return this;
  }

  /** Emits; a listener that throws is reported on stderr and never breaks the emitter. */
  protected safeEmit<K extends keyof M & string>(event: K, payload: M[K]): void {
    // Most events have no listener: skip the copy of the listener array that listeners() makes.
    if (this.#emitter.listenerCount(event) === 0) return;
    for (const listener of this.#emitter.listeners(event)) {
      try {
        (listener as (p: M[K]) => void)(payload);
      } catch (error) {
        process.emitWarning(`relaymesh: a "${event}" listener threw: ${(error as Error)?.stack ?? String(error)}`);
      }
    }
  }

  protected hasListeners(event: keyof M & string): boolean {
    return this.#emitter.listenerCount(event) > 0;
  }
}
