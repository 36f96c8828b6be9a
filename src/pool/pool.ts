import { BroadcastChannel } from "node:worker_threads";
import { randomUUID } from "node:crypto";
import { availableParallelism } from "node:os";
import { Piscina } from "piscina";
import PQueue from "p-queue";
import { errorToWire } from "../errors.js";
import type {
  AgentMessage, ControlMessage, KvReply, LateResultMessage, RunBatchMessage, RunBatchReply, StepResultMessage, StepRun,
  WarmUpMessage, WarmUpReply,
} from "./protocol.js";

export interface AgentPoolOptions {
  /** Worker threads (default: the core count). */
  threads?: number;
  /** Step attempts running at once across all threads. */
  concurrency: number;
  /** An existing Piscina pool whose filename is RelayMesh's agent worker; it is not closed by close(). */
  piscina?: Piscina;
  /** Receives agents' heartbeats, progress and kv requests (answer kv ones with `replyKv`). */
  onAgentMessage: (message: AgentMessage) => void;
}

/** The Piscina file that runs agents: dist/workers/agent.worker.js beside dist/src. */
export const AGENT_WORKER_FILE = new URL("../../workers/agent.worker.js", import.meta.url).href;

/** How often an abort is broadcast again until its attempt settles. */
const ABORT_RESEND_MS = 200;

/** Rounds of warm-up messages before `warmUp` settles for the threads it reached. */
const WARM_UP_ROUNDS = 5;

/** Receives the outcome of one attempt handed to `AgentPool.run`. */
export type SettleFn<T> = (token: T, result: StepResultMessage) => void;

/**
 * Runs step attempts on a Piscina pool, several per thread message, through a p-queue that gives
 * the next free thread the highest-priority message. The caller bounds how many run at once
 * (the supervisor's slots); aborts reach the threads over a BroadcastChannel so an
 * abort never terminates a thread, and late results come back over another.
 */
export class AgentPool {
  readonly controlChannel = `relaymesh:${randomUUID()}`;
  readonly resultChannel = `relaymesh-results:${randomUUID()}`;
  readonly threads: number;
  readonly #piscina: Piscina;
  readonly #ownsPiscina: boolean;
  readonly #control: BroadcastChannel;
  readonly #results: BroadcastChannel;
  readonly #lateResults: boolean;
  /** Thread messages waiting for a thread, highest step priority first. */
  readonly #queue: PQueue;
  /** Attempts handed to a thread and not yet settled, by key (a late result may overtake its batch's reply). */
  readonly #pending = new Map<string, (result: StepResultMessage) => void>();
  /** Aborts asked for and not yet settled: re-sent until they are, since a thread that is still starting misses a broadcast. */
  readonly #aborting = new Map<string, ControlMessage>();
  #abortTimer: NodeJS.Timeout | null = null;

  constructor(options: AgentPoolOptions) {
    this.threads = options.threads ?? availableParallelism();
    this.#ownsPiscina = !options.piscina;
    this.#piscina = options.piscina ?? new Piscina({
      filename: AGENT_WORKER_FILE,
      minThreads: this.threads,
      maxThreads: this.threads,
      concurrentTasksPerWorker: Math.max(1, Math.ceil(options.concurrency / this.threads)),
      idleTimeout: 60_000,
      // A batch replies before its slow attempts settle: the thread's event loop must keep running between tasks.
      atomics: "disabled",
    });
    // A pool given to us whose threads sleep between tasks cannot deliver late results: batches then wait for all.
    this.#lateResults = this.#piscina.options.atomics !== "sync";
    this.#queue = new PQueue({ concurrency: this.#piscina.options.maxThreads * this.#piscina.options.concurrentTasksPerWorker });
    this.#control = new BroadcastChannel(this.controlChannel);
    this.#results = new BroadcastChannel(this.resultChannel);
    const onAgentMessage = options.onAgentMessage;
    this.#results.onmessage = (event) => {
      const msg = (event as { data: LateResultMessage | AgentMessage }).data;
      if (msg.type === "step-result") this.#settle(msg.key, msg.result);
      else onAgentMessage(msg);
    };
    this.#results.unref();
  }

  /**
   * Resolves once every thread of the pool has started and answered a message, so the first
   * step does not pay thread start-up; resolves with the number of threads that answered. Rejects
   * when a thread cannot start (e.g. its file is missing).
   */
  async warmUp(): Promise<number> {
    const want = Math.max(1, this.#piscina.threads.length);
    const msg: WarmUpMessage = { type: "warm-up", controlChannel: this.controlChannel, resultChannel: this.resultChannel };
    const seen = new Set<number>();
    // Piscina hands each message to the least busy thread, so one round usually reaches them all.
    for (let round = 0; round < WARM_UP_ROUNDS && seen.size < want; round++) {
      const replies = await Promise.all(Array.from({ length: want }, () => this.#piscina.run(msg) as Promise<WarmUpReply>));
      for (const r of replies) seen.add(r.threadId);
    }
    return seen.size;
  }

  /**
   * Runs attempts, spread over the threads in a few messages. `settle` is called exactly once per
   * attempt, with its token; agent errors and a failed thread come back as `type: "error"`.
   */
  run<T>(steps: readonly StepRun[], tokens: readonly T[], settle: SettleFn<T>): void {
    // Without late results, one attempt per message, so a slow attempt holds back no other.
    const chunks = this.#lateResults ? Math.min(this.threads, steps.length) : steps.length;
    const size = Math.ceil(steps.length / chunks);
    for (let from = 0; from < steps.length; from += size) {
      this.#runChunk(steps.slice(from, from + size), tokens.slice(from, from + size), settle);
    }
  }

  #runChunk<T>(steps: StepRun[], tokens: T[], settle: SettleFn<T>): void {
    if (this.#pending.size === 0) this.#results.ref();
    for (let i = 0; i < steps.length; i++) {
      const token = tokens[i]!;
      this.#pending.set(steps[i]!.key, (result) => settle(token, result));
    }
    const msg: RunBatchMessage = {
      type: "run-batch", steps, controlChannel: this.controlChannel, resultChannel: this.resultChannel, lateResults: this.#lateResults,
    };
    const priority = steps.reduce((max, step) => Math.max(max, step.priority), 0);
    this.#queue.add(() => this.#piscina.run(msg) as Promise<RunBatchReply>, { priority }).then((reply) => {
      for (let i = 0; i < steps.length; i++) {
        const result = reply.results[i];
        if (result) this.#settle(steps[i]!.key, result);
      }
    }, (error) => {
      const result: StepResultMessage = { type: "error", error: errorToWire(error), retryable: true, retryDelayMs: null };
      for (const step of steps) this.#settle(step.key, result);
    });
  }

  #settle(key: string, result: StepResultMessage): void {
    const settle = this.#pending.get(key);
    if (!settle) return;
    this.#pending.delete(key);
    this.#aborting.delete(key);
    if (this.#pending.size === 0) this.#results.unref();
    settle(result);
  }

  /** Tells the thread running attempt `key` to abort it with `reason` (a RelayMeshError). */
  abort(key: string, reason: unknown): void {
    if (!this.#pending.has(key)) return;
    const msg: ControlMessage = { type: "abort", key, error: errorToWire(reason) };
    this.#aborting.set(key, msg);
    this.#control.postMessage(msg);
    if (this.#abortTimer) return;
    this.#abortTimer = setInterval(() => {
      for (const m of this.#aborting.values()) this.#control.postMessage(m);
      if (this.#aborting.size === 0 && this.#abortTimer) {
        clearInterval(this.#abortTimer);
        this.#abortTimer = null;
      }
    }, ABORT_RESEND_MS);
    this.#abortTimer.unref();
  }

  /** Answers an agent's kv request. */
  replyKv(requestId: string, reply: KvReply): void {
    const msg: ControlMessage = { type: "kv-reply", requestId, reply };
    this.#control.postMessage(msg);
  }

  async close(): Promise<void> {
    if (this.#abortTimer) clearInterval(this.#abortTimer);
    this.#control.close();
    this.#results.close();
    if (this.#ownsPiscina) await this.#piscina.close({ force: true });
  }
}
