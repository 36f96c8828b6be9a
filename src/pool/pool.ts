import { BroadcastChannel } from "node:worker_threads";
import { randomUUID } from "node:crypto";
import { availableParallelism } from "node:os";
import { Piscina } from "piscina";
import PQueue from "p-queue";
import { errorToWire } from "../errors.js";
import type { ControlMessage, RunStepMessage, StepResultMessage } from "./protocol.js";

export interface AgentPoolOptions {
  /** Worker threads (default: the core count). */
  threads?: number;
  /** Step attempts running at once across all threads. */
  concurrency: number;
  /** An existing Piscina pool whose filename is RelayMesh's agent worker; it is not closed by close(). */
  piscina?: Piscina;
}

/** The Piscina file that runs agents: dist/workers/agent.worker.js beside dist/src. */
export const AGENT_WORKER_FILE = new URL("../../workers/agent.worker.js", import.meta.url).href;

/**
 * Bounded dispatch of step attempts onto a Piscina pool. p-queue orders what waits by priority;
 * aborts reach the threads over a BroadcastChannel so an abort never terminates a thread.
 */
export class AgentPool {
  readonly controlChannel = `relaymesh:${randomUUID()}`;
  readonly #piscina: Piscina;
  readonly #ownsPiscina: boolean;
  readonly #queue: PQueue;
  readonly #control: BroadcastChannel;

  constructor(options: AgentPoolOptions) {
    const threads = options.threads ?? availableParallelism();
    this.#ownsPiscina = !options.piscina;
    this.#piscina = options.piscina ?? new Piscina({
      filename: AGENT_WORKER_FILE,
      minThreads: threads,
      maxThreads: threads,
      concurrentTasksPerWorker: Math.max(1, Math.ceil(options.concurrency / threads)),
      idleTimeout: 60_000,
    });
    this.#queue = new PQueue({ concurrency: options.concurrency });
    this.#control = new BroadcastChannel(this.controlChannel);
  }

  /**
   * Runs one attempt. Agent errors come back as `type: "error"`, never as a rejection. When
   * `signal` fires (its reason a RelayMeshError) a waiting attempt is dropped and a running
   * one is told to abort; either way the result is an error carrying that reason.
   */
  async run(message: Omit<RunStepMessage, "controlChannel">, priority: number, signal: AbortSignal): Promise<StepResultMessage> {
    const full: RunStepMessage = { ...message, controlChannel: this.controlChannel };
    const onAbort = () => {
      const msg: ControlMessage = { type: "abort", key: message.key, error: errorToWire(signal.reason) };
      this.#control.postMessage(msg);
    };
    signal.addEventListener("abort", onAbort, { once: true });
    try {
      return await this.#queue.add(() => this.#piscina.run(full) as Promise<StepResultMessage>, { priority, signal });
    } catch (error) {
      const reason = signal.aborted ? signal.reason : error;
      return { type: "error", error: errorToWire(reason), retryable: true, retryDelayMs: null };
    } finally {
      signal.removeEventListener("abort", onAbort);
    }
  }

  /** Attempts waiting in the queue, not yet on a thread. */
  get queued(): number {
    return this.#queue.size;
  }

  async close(): Promise<void> {
    this.#control.close();
    if (this.#ownsPiscina) await this.#piscina.close({ force: true });
  }
}
