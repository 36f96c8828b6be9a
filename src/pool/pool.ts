import { BroadcastChannel } from "node:worker_threads";
import { randomUUID } from "node:crypto";
import { availableParallelism } from "node:os";
import { Piscina } from "piscina";
import PQueue from "p-queue";
import { ErrorCode, RelayMeshError, StepTimeoutError, errorToWire } from "../errors.js";
import { MAX_TIMER_MS } from "../model/duration.js";
import { signalGroup } from "../../workers/script-runner.js";
import type {
  AgentMessage, BatchStartedMessage, ControlMessage, ProcessGroupMessage, KvReply, LateResultMessage, RunBatchMessage, RunBatchReply, StepResultMessage, StepRun,
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

/**
 * How long past its timeout (or its abort) an attempt may take to settle before its thread is
 * taken as unresponsive, ended and replaced. Script agents get their kill grace on top.
 */
export const UNRESPONSIVE_GRACE_MS = 1_000;

/** Rounds of warm-up messages before `warmUp` settles for the threads it reached. */
const WARM_UP_ROUNDS = 5;

/** Receives the outcome of one attempt handed to `AgentPool.run`. */
export type SettleFn<T> = (token: T, result: StepResultMessage) => void;


/** How long close() waits for starting threads to finish loading before it ends them anyway. */
const CLOSE_WARM_UP_WAIT_MS = 5_000;

/** Resolves when `warmUp` settles (either way) or after `ms`. */
async function threadsLoaded(warmUp: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([warmUp.catch(() => {}), new Promise<void>((resolve) => { timer = setTimeout(resolve, ms); })]);
  clearTimeout(timer);
}

function workerLost(): StepResultMessage {
  const error = new RelayMeshError(ErrorCode.WORKER_LOST, "the worker thread running this attempt was ended because another attempt on it stopped responding; it runs again");
  return { type: "error", error: errorToWire(error), retryable: true, retryDelayMs: null };
}

/** One thread message (a Piscina task) and the attempts it carries. */
interface Batch {
  id: number;
  /** The thread running it, once it announced itself (batches with module agents do). */
  threadId: number | null;
}

interface Pending {
  settle: (result: StepResultMessage) => void;
  batch: Batch;
  step: StepRun;
  /** Fires when the attempt overran its timeout, or its abort, by the grace: its thread is ended. */
  deadline: NodeJS.Timeout | null;
}

/**
 * Runs step attempts on a Piscina pool, several per thread message, through a p-queue that gives
 * the next free thread the highest-priority message. The caller bounds how many run at once
 * (the supervisor's slots); aborts reach the threads over a BroadcastChannel, and late results
 * come back over another. Timeouts are also enforced here, on the main thread: an attempt that
 * does not settle within its timeout (or abort) plus a grace fails, and its thread, which no
 * longer responds (a busy loop, a blocking call), is ended and replaced; the other attempts it
 * ran get their leases back (RELAYMESH_ERR_WORKER_LOST) and run again.
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
  readonly #pending = new Map<string, Pending>();
  /** Aborts asked for and not yet settled: re-sent until they are, since a thread that is still starting misses a broadcast. */
  readonly #aborting = new Map<string, ControlMessage>();
  #abortTimer: NodeJS.Timeout | null = null;
  /** Announced batches not yet finished, by id. */
  readonly #batches = new Map<number, Batch>();
  #batchSeq = 0;
  /** Threads being ended, until their exit was seen: the tasks Piscina fails meanwhile were their co-tenants'. */
  #ending = 0;
  readonly #exits = new Set<Promise<unknown>>();
  /** Thread messages handed to Piscina and not yet answered. */
  #open = 0;
  /** Script agents' process groups still running, by pid, with the thread that started them (killed if it is ended). */
  readonly #groups = new Map<number, number>();

  constructor(options: AgentPoolOptions) {
    this.threads = options.threads ?? availableParallelism();
    // A thread's share of the slots: messages one thread runs at once (one attempt each at most when they may block it).
    const share = Math.max(1, Math.ceil(options.concurrency / this.threads));
    this.#ownsPiscina = !options.piscina;
    this.#piscina = options.piscina ?? new Piscina({
      filename: AGENT_WORKER_FILE,
      minThreads: this.threads,
      maxThreads: this.threads,
      concurrentTasksPerWorker: share,
      idleTimeout: 60_000,
      // A batch posts results before its slow attempts settle: the thread's event loop must keep running between tasks.
      atomics: "disabled",
    });
    // A pool given to us whose threads sleep between tasks cannot deliver late results: batches then wait for all.
    this.#lateResults = this.#piscina.options.atomics !== "sync";
    this.#queue = new PQueue({ concurrency: this.#piscina.options.maxThreads * this.#piscina.options.concurrentTasksPerWorker });
    this.#control = new BroadcastChannel(this.controlChannel);
    this.#results = new BroadcastChannel(this.resultChannel);
    const onAgentMessage = options.onAgentMessage;
    this.#results.onmessage = (event) => {
      const msg = (event as { data: LateResultMessage | BatchStartedMessage | ProcessGroupMessage | AgentMessage }).data;
      if (msg.type === "step-results") for (const r of msg.results) this.#settle(r.key, r.result);
      else if (msg.type === "batch-started") this.#started(msg);
      else if (msg.type === "process-group") {
        if (msg.running) this.#groups.set(msg.pid, msg.threadId);
        else this.#groups.delete(msg.pid);
      }
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
    // A thread that fails while starting is reported as a pool "error", and the message waits on: fail with it.
    let onError: (error: Error) => void = () => {};
    const failed = new Promise<never>((_, reject) => { onError = reject; });
    this.#piscina.once("error", onError);
    try {
      // Piscina hands each message to the least busy thread, so one round usually reaches them all.
      for (let round = 0; round < WARM_UP_ROUNDS && seen.size < want; round++) {
        const replies = await Promise.race([Promise.all(Array.from({ length: want }, () => this.#piscina.run(msg) as Promise<WarmUpReply>)), failed]);
        for (const r of replies) seen.add(r.threadId);
      }
    } finally {
      this.#piscina.off("error", onError);
    }
    return seen.size;
  }

  /**
   * Runs attempts, spread over the threads in a few messages. `settle` is called exactly once per
   * attempt, with its token; agent errors and a failed thread come back as `type: "error"`.
   */
  run<T>(steps: readonly StepRun[], tokens: readonly T[], settle: SettleFn<T>): void {
    // Without late results, one attempt per message, so a slow attempt holds back no other.
    // Module agents may block their thread: spread over the threads. Built-ins and scripts never
    // do (their work is a JSON parse and encode, or a child process): all in one message, so as
    // few messages as possible cross threads (each one wakes its receiver, the dearest part of a
    // short step; a thread's share per message gave 11–33% less W1 drain and 20–28% more CPU).
    const chunks = !this.#lateResults ? steps.length
      : steps.some((step) => step.agent.kind === "module") ? Math.min(this.threads, steps.length)
      : 1;
    const size = Math.ceil(steps.length / chunks);
    for (let from = 0; from < steps.length; from += size) {
      this.#runChunk(steps.slice(from, from + size), tokens.slice(from, from + size), settle);
    }
  }

  #runChunk<T>(steps: StepRun[], tokens: T[], settle: SettleFn<T>): void {
    if (this.#pending.size === 0) this.#results.ref();
    const batch: Batch = { id: ++this.#batchSeq, threadId: null };
    // Built-ins and script agents never block their thread; module agents may.
    const announce = steps.some((step) => step.agent.kind === "module");
    if (announce) this.#batches.set(batch.id, batch);
    for (let i = 0; i < steps.length; i++) {
      const token = tokens[i]!;
      this.#pending.set(steps[i]!.key, { settle: (result) => settle(token, result), batch, step: steps[i]!, deadline: null });
    }
    const msg: RunBatchMessage = {
      type: "run-batch", batchId: batch.id, announce, steps, controlChannel: this.controlChannel, resultChannel: this.resultChannel, lateResults: this.#lateResults,
    };
    const priority = steps.reduce((max, step) => Math.max(max, step.priority), 0);
    const start = () => {
      if (!announce) for (const step of steps) this.#armTimeout(step);
      this.#open++;
      return (this.#piscina.run(msg) as Promise<RunBatchReply>).finally(() => { this.#open--; });
    };
    this.#queue.add(start, { priority }).then((reply) => {
      this.#batches.delete(batch.id);
      for (let i = 0; i < steps.length; i++) {
        const result = reply.results[i];
        if (result) this.#settle(steps[i]!.key, result);
      }
    }, (error) => {
      this.#batches.delete(batch.id);
      const result: StepResultMessage = this.#ending > 0 ? workerLost() : { type: "error", error: errorToWire(error), retryable: true, retryDelayMs: null };
      for (const step of steps) this.#settle(step.key, result);
    });
  }

  /** A batch with module agents began on a thread: its timeouts count from now (not while it waited behind a stuck one). */
  #started(msg: BatchStartedMessage): void {
    const batch = this.#batches.get(msg.batchId);
    if (!batch) return;
    batch.threadId = msg.threadId;
    for (const p of this.#pending.values()) if (p.batch === batch) this.#armTimeout(p.step);
  }

  /** Starts the main thread's watch on an attempt's timeout, as its thread message starts. */
  #armTimeout(step: StepRun): void {
    const p = this.#pending.get(step.key);
    if (!p || p.deadline || step.timeoutMs === null) return;
    const ms = step.timeoutMs;
    p.deadline = setTimeout(() => {
      this.#end(step.key, new StepTimeoutError(`step "${step.stepId}" timed out after ${ms} ms and its worker thread did not respond; the thread was replaced`));
    }, Math.min(MAX_TIMER_MS, ms + this.#graceOf(step)));
  }

  #graceOf(step: StepRun): number {
    return UNRESPONSIVE_GRACE_MS + (step.agent.kind === "script" ? step.killGraceMs : 0);
  }

  /** Fails an attempt that does not respond with `reason`, and ends the thread running it (Piscina replaces it). */
  #end(key: string, reason: RelayMeshError): void {
    const p = this.#pending.get(key);
    if (!p) return;
    const retryable = reason.code !== ErrorCode.NON_RETRYABLE;
    this.#settle(key, { type: "error", error: errorToWire(reason), retryable, retryDelayMs: null });
    const threadId = p.batch.threadId;
    const thread = threadId === null ? undefined : this.#piscina.threads.find((w) => w.threadId === threadId);
    if (!thread) return;
    const lost = workerLost();
    for (const [other, q] of this.#pending) if (q.batch.threadId === threadId) this.#settle(other, lost);
    this.#killGroups((owner) => owner === threadId);
    this.#ending++;
    // Piscina fails the thread's other tasks on its exit event, before this promise's reaction runs.
    const exit: Promise<unknown> = thread.terminate().finally(() => new Promise<void>((resolve) => setImmediate(() => {
      this.#ending--;
      this.#exits.delete(exit);
      resolve();
    })));
    this.#exits.add(exit);
  }

  #settle(key: string, result: StepResultMessage): void {
    const p = this.#pending.get(key);
    if (!p) return;
    this.#pending.delete(key);
    this.#aborting.delete(key);
    if (p.deadline) clearTimeout(p.deadline);
    if (this.#pending.size === 0) this.#results.unref();
    p.settle(result);
  }

  /**
   * Tells the thread running attempt `key` to abort it with `reason` (a RelayMeshError). An
   * attempt that has not settled a grace after its abort is ended with its thread.
   */
  abort(key: string, reason: RelayMeshError): void {
    const p = this.#pending.get(key);
    if (!p) return;
    const msg: ControlMessage = { type: "abort", key, error: errorToWire(reason) };
    this.#aborting.set(key, msg);
    this.#control.postMessage(msg);
    if (p.deadline) clearTimeout(p.deadline);
    p.deadline = setTimeout(() => this.#end(key, reason), this.#graceOf(p.step));
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
    for (const p of this.#pending.values()) if (p.deadline) clearTimeout(p.deadline);
    this.#control.close();
    this.#results.close();
    // Piscina's close waits (on an unref'd timer) for tasks a thread being ended would never answer.
    await Promise.allSettled([...this.#exits]);
    if (this.#ownsPiscina) {
      // Node 20 aborts the process when a thread is terminated while it loads its modules (one starting, or a replacement).
      await threadsLoaded(this.warmUp(), CLOSE_WARM_UP_WAIT_MS);
      if (this.#open > 0) await this.#piscina.destroy();
      else await this.#piscina.close({ force: true });
    }
    // Scripts whose threads are gone would be left running.
    this.#killGroups(() => true);
  }

  /** SIGKILLs the script process groups started by the threads `of` picks. */
  #killGroups(of: (threadId: number) => boolean): void {
    for (const [pid, threadId] of this.#groups) {
      if (!of(threadId)) continue;
      signalGroup(pid, "SIGKILL");
      this.#groups.delete(pid);
    }
  }
}
