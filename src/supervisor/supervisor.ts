import { performance } from "node:perf_hooks";
import { ErrorCode, LeaseLostError, RelayMeshError, errorFromWire, errorToWire, type WireError } from "../errors.js";
import type { EngineEventMap } from "../events.js";
import type { Settings } from "../model/settings.js";
import type { AgentRegistry } from "../agents/registry.js";
import type { AgentPool } from "../pool/pool.js";
import { isWorkerLost } from "../pool/protocol.js";
import type { StepResultMessage, StepRun } from "../pool/protocol.js";
import type { Store } from "../store/store.js";
import { TERMINAL_TASK_STATUSES } from "../store/types.js";
import type {
  CancelResult, ClaimedStep, CommitBatch, CommitResult, KvWrite, LeaseRef, NewTask, ReplayResult, StepCompletion, StepFailure, StepProgress,
} from "../store/types.js";
import type { MaintenanceResult } from "../mesh/maintenance.js";
import type { AgentMessage, KvOp, KvReply } from "../pool/protocol.js";
import { newSpanId, traceparent } from "../observe/ids.js";
import { PriorityPicker } from "./picker.js";
import { ClaimAhead } from "./claim-ahead.js";
import { claimLimit, machineLoad } from "../mesh/claim-policy.js";
import { PersistentScriptHost } from "../agents/script-host.js";
import type { ScriptAgentConfig } from "../agents/scripts.js";
import { backoffMs } from "./retry.js";
import { MAX_TIMER_MS } from "../model/duration.js";

export interface SupervisorOptions {
  store: Store;
  /** Null until attachPool(): a process that only submits and reads never has one. */
  pool: AgentPool | null;
  agents: AgentRegistry;
  nodeId: string;
  concurrency: number;
  /** Steps claimed beyond `concurrency`, leased and waiting locally for a free slot (null: adaptive, see ClaimAhead). */
  prefetch: number | null;
  settings: Settings;
  /** How often an idle supervisor looks for work submitted by other processes. */
  pollIntervalMs: number;
  emit: <K extends keyof EngineEventMap>(event: K, payload: EngineEventMap[K]) => void;
  /** The clock of batches (default: the store's, `store.now()`); tests inject their own. */
  now?: () => number;
}

/** Agents' own heartbeats renew leases at most this often (the engine heartbeats running steps anyway). */
const AGENT_HEARTBEAT_MIN_INTERVAL_MS = 250;

/** Between SIGTERM and SIGKILL of a script agent's process group. */
const SCRIPT_KILL_GRACE_MS = 2_000;

/** An attempt whose lease was not renewed stops this fraction of the lease before it ends. */
const LEASE_SAFETY_FRACTION = 0.2;

/** Longest a finished step waits for others to share its commit. */
const GROUP_COMMIT_WINDOW_MS = 2;

type Disposition = "commit" | "release" | "drop";

interface InFlight {
  step: ClaimedStep;
  /** False while prefetched (waiting for a slot), true once handed to the pool. */
  running: boolean;
  /** Set once the result is in (or the step was aborted before it ran): later results are ignored. */
  settled: boolean;
  startedAt: number;
  /** Monotonic time by which the lease must have been renewed. */
  leaseDeadline: number;
  /** What to do with the result: commit it, give the lease back (shutdown), or drop it (lease lost, cancelled). */
  disposition: Disposition;
  /** This attempt's span in the task's trace (set when it is handed to an agent). */
  spanId: string | null;
  /** Aborts an attempt that runs on this thread (a persistent script agent's) rather than in the pool. */
  abortHere?: (reason: RelayMeshError) => void;
}

interface PendingSubmit {
  task: NewTask;
  resolve: (v: { taskId: string; created: boolean; steps: number }) => void;
  reject: (e: unknown) => void;
}

/**
 * The one place in a process that changes step state. Everything it must write waits in its
 * mailbox and is applied by the next group commit, which also claims work for free capacity;
 * claimed steps go straight to the agent pool.
 */
export class Supervisor {
  readonly #o: SupervisorOptions;
  readonly #now: () => number;
  readonly #picker: PriorityPicker;
  /** Every step this process holds a lease on: prefetched and running. */
  readonly #inflight = new Map<string, InFlight>();
  /** Prefetched steps in the picker's order, waiting for a slot. */
  #waiting: InFlight[] = [];
  #running = 0;
  #submits: PendingSubmit[] = [];
  /** Operator writes waiting for their turn between group commits. */
  #ops: (() => Promise<void>)[] = [];
  #kvWrites: { write: KvWrite; resolve: (r: "ok" | "refused") => void; reject: (e: unknown) => void }[] = [];
  #progress: StepProgress[] = [];
  #completions: StepCompletion[] = [];
  #failures: StepFailure[] = [];
  #releases: LeaseRef[] = [];
  #renewDue = false;
  #reclaimDue = true;
  #claiming = false;
  #flushScheduled = false;
  #pumpScheduled = false;
  #lastAgentRenewal = 0;
  #paused = false;
  #heartbeatTimer: NodeJS.Timeout | null = null;
  #loadValue = 0;
  #loadAt = -Infinity;
  #relativeLoad: number | null = null;
  #scriptHost: PersistentScriptHost | null = null;
  /** Running attempts of agents that have a concurrency cap of their own. */
  readonly #capped = new Map<string, number>();
  readonly #hasCaps: boolean;
  /** The agents this node can run: it claims steps of these only. */
  readonly #agentIds: readonly string[];
  #windowTimer: NodeJS.Timeout | null = null;
  #flushing: Promise<void> | null = null;
  /** A commit of submissions only, sent right behind the group commit in flight (pipelined). */
  #submitting: Promise<void> | null = null;
  #submitScheduled = false;
  #idleWaiters: (() => void)[] = [];
  #timers: NodeJS.Timeout[] = [];
  #unwake: (() => void) | null = null;
  /** An operator write made steps runnable: claim again. */
  #wakeDue = false;
  /** Monotonic start of the store commit in flight, if any. */
  #flushStartedAt: number | null = null;
  /** Group commits failed in a row (store unreachable). */
  #failedCommits = 0;
  #retryTimer: NodeJS.Timeout | null = null;
  #retryTimerAt = Infinity;
  #settings: Settings;
  /** Attempts whose outcome waits for its commit (for the events emitted after it). */
  readonly #ran = new Map<string, { taskId: string; stepId: string; attempt: number; durationMs: number; traceId: string; spanId: string | null }>();
  /** Attempts this supervisor ran to an outcome (executed), and the outcomes committed (succeeded, failed). */
  readonly stats = { executed: 0, succeeded: 0, failed: 0 };
  readonly #ahead: ClaimAhead;

  constructor(options: SupervisorOptions) {
    this.#o = options;
    this.#now = options.now ?? (() => options.store.now());
    this.#settings = options.settings;
    this.#picker = new PriorityPicker(options.settings.lowStarvationMaxPicks);
    this.#ahead = new ClaimAhead(options.concurrency, options.prefetch);
    this.#hasCaps = options.agents.list().some((a) => options.agents.concurrency(a.id) !== undefined);
    this.#agentIds = [...options.agents.ids()].sort();
  }

  /** Attempts handed to agents and not yet settled. */
  get inFlight(): number {
    return this.#inflight.size;
  }

  /** Attempts this node holds at most (running and prefetched). */
  get capacity(): number {
    return this.#o.concurrency + this.#ahead.prefetch;
  }

  attachPool(pool: AgentPool): void {
    this.#o.pool = pool;
  }

  /** Queues a submission; resolves once it is committed. */
  submit(task: NewTask): Promise<{ taskId: string; created: boolean; steps: number }> {
    return new Promise((resolve, reject) => {
      this.#submits.push({ task, resolve, reject });
      if (this.#flushing) this.#pipelineSubmits();
      else this.#schedule();
    });
  }

  /**
   * Queues a checkpoint write for the next group commit. With a `ref`, it applies only while
   * that lease holds ("refused" otherwise, recorded as a lease conflict).
   */
  kvWrite(write: KvWrite): Promise<"ok" | "refused"> {
    return new Promise((resolve, reject) => {
      this.#kvWrites.push({ write, resolve, reject });
      this.#schedule();
    });
  }

  /**
   * Runs an operator write in this supervisor's turn (between group commits, never beside one),
   * so one place in the process writes, aborts and emits.
   */
  operate<T>(op: () => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.#ops.push(() => op().then(resolve, reject));
      this.#schedule();
    });
  }

  /**
   * Cancels a task (see Store.cancelTask): aborts the attempts of it running here, and emits
   * task:finished when the cancel ended the task.
   */
  cancelTask(taskId: string, mode: "hard" | "soft", reason: string | undefined): Promise<CancelResult | null> {
    return this.operate(async () => {
      const result = await this.#o.store.cancelTask(taskId, mode, this.#now(), reason);
      if (!result) return null;
      this.abortRefs(result.cancelledRunning, new RelayMeshError(ErrorCode.ABORTED, `task ${taskId} was cancelled${reason ? `: ${reason}` : ""}`));
      if (result.cancelledSteps.length > 0 && TERMINAL_TASK_STATUSES.has(result.status)) this.#o.emit("task:finished", { taskId, status: result.status });
      return result;
    });
  }

  /** Replays a dead-lettered task (see Store.replayTask); its steps are claimable at once. */
  replayTask(taskId: string): Promise<ReplayResult | null> {
    return this.operate(async () => {
      const result = await this.#o.store.replayTask(taskId, this.#now());
      if (result?.replayed) this.#wakeDue = true;
      return result;
    });
  }

  /** Bumps the cluster epoch (see Store.bumpClusterEpoch) and stops the fenced attempts running here. */
  bumpClusterEpoch(): Promise<{ clusterEpoch: number; fencedSteps: { taskId: string; stepId: string }[] }> {
    return this.operate(async () => {
      const result = await this.#o.store.bumpClusterEpoch(this.#now());
      const fenced = new Set(result.fencedSteps.map((f) => `${f.taskId}\u0000${f.stepId}`));
      for (const f of this.#inflight.values()) {
        if (fenced.has(`${f.step.taskId}\u0000${f.step.stepId}`)) {
          this.#abort(f, "drop", new LeaseLostError(`step "${f.step.stepId}" (task ${f.step.taskId}) was fenced by cluster epoch ${result.clusterEpoch}`));
        }
      }
      if (result.fencedSteps.length > 0) this.#wakeDue = true;
      return result;
    });
  }

  /** A maintenance tick in this supervisor's turn; reclaimed steps are claimable at once. */
  maintain(tick: () => Promise<MaintenanceResult>): Promise<MaintenanceResult> {
    return this.operate(async () => {
      const result = await tick();
      const reclaimed = result.reclaimedFromDead + result.reclaimedExpired;
      if (reclaimed > 0) {
        this.#o.emit("lease:reclaimed", { count: reclaimed });
        this.#wakeDue = true;
      }
      for (const t of result.finishedTasks) this.#o.emit("task:finished", t);
      return result;
    });
  }

  /** An agent's heartbeat, progress report or kv request about one of its attempts. */
  onAgentMessage(msg: AgentMessage): void {
    const f = this.#byKey(msg.key);
    if (msg.type === "agent-kv") {
      this.#agentKv(f, msg.op).then((reply) => this.#o.pool?.replyKv(msg.requestId, reply));
      return;
    }
    if (!f || f.disposition !== "commit") return;
    if (msg.type === "agent-heartbeat") {
      const now = performance.now();
      if (now - this.#lastAgentRenewal < AGENT_HEARTBEAT_MIN_INTERVAL_MS) return;
      this.#lastAgentRenewal = now;
      this.#renewDue = true;
      this.#schedule();
      return;
    }
    const pct = Math.max(0, Math.min(100, Number(msg.pct) || 0));
    this.#progress.push({ ...pickRef(f.step), pct, message: msg.message });
    this.#o.emit("step:progress", { taskId: f.step.taskId, stepId: f.step.stepId, attempt: f.step.attempt, pct, message: msg.message });
    this.#schedule();
  }

  /** A kv request of the attempt `key` (`${stepKey}:${leaseEpoch}`), for agents hosted on this thread. */
  kvRequest(key: string, op: KvOp): Promise<KvReply> {
    return this.#agentKv(this.#byKey(key), op);
  }

  /** Serves an agent's kv request: reads from the store, writes fenced by the attempt's lease. */
  async #agentKv(f: InFlight | undefined, op: KvOp): Promise<KvReply> {
    try {
      if (op.kind === "get") {
        const entry = await this.#o.store.kvGet(op.namespace, op.key);
        return { ok: true, value: entry ? { found: true, value: entry.value } : { found: false } };
      }
      if (op.kind === "get-all") {
        const entries = await this.#o.store.kvList(op.namespace, { limit: 100_000 });
        return { ok: true, value: Object.fromEntries(entries.map((e) => [e.key, e.value])) };
      }
      const lost = new LeaseLostError(`checkpoint refused: the lease of this attempt moved on (reclaimed or cancelled)`);
      if (!f || f.disposition !== "commit") return { ok: false, error: errorToWire(lost) };
      const step = f.step;
      const outcome = await this.kvWrite({
        ref: pickRef(step), namespace: op.namespace, entries: op.entries, writer: `step:${step.taskId}/${step.stepId}@${step.leaseEpoch}`,
      });
      if (outcome === "refused") {
        this.#abort(f, "drop", lost);
        return { ok: false, error: errorToWire(lost) };
      }
      return { ok: true, value: null };
    } catch (error) {
      return { ok: false, error: errorToWire(error) };
    }
  }

  #byKey(key: string): InFlight | undefined {
    const sep = key.lastIndexOf(":");
    const f = this.#inflight.get(key.slice(0, sep));
    return f && String(f.step.leaseEpoch) === key.slice(sep + 1) ? f : undefined;
  }

  /** Begins claiming and running steps, with heartbeat, poll and maintenance timers. */
  startWorking(): void {
    if (!this.#o.pool) throw new RelayMeshError(ErrorCode.INVALID_STATE, "this engine was opened with work: false and has no agent pool");
    if (this.#claiming) return;
    this.#claiming = true;
    const lease = this.#settings.leaseTimeoutMs;
    const every = (ms: number, fn: () => void) => { const t = setInterval(fn, ms); t.unref(); this.#timers.push(t); };
    // Heartbeats also tell a node that a step it runs was cancelled or reclaimed elsewhere: at most every 2 s.
    // They go on after claiming stops, while in-flight steps drain, until stopHeartbeats().
    if (!this.#heartbeatTimer) {
      const interval = Math.max(50, Math.min(2_000, Math.floor(lease / 3)));
      let lastBeat = performance.now();
      this.#heartbeatTimer = setInterval(() => {
        const now = performance.now();
        // A tick far behind schedule means this process was paused (SIGSTOP), not cut off: its
        // late results go to the store, to be refused and recorded there.
        const paused = now - lastBeat > 3 * interval;
        lastBeat = now;
        if (this.#inflight.size === 0) return;
        const hanging = this.#flushStartedAt !== null && now - this.#flushStartedAt > interval;
        if (!paused && (this.#failedCommits > 0 || hanging)) this.#abortOverdue();
        this.#renewDue = true;
        this.#schedule();
      }, interval);
      this.#heartbeatTimer.unref();
    }
    every(Math.max(100, Math.min(5_000, Math.floor(lease / 2))), () => { this.#reclaimDue = true; this.#schedule(); });
    every(this.#o.pollIntervalMs, () => { if (this.#free() > 0) this.#schedule(); });
    this.#unwake ??= this.#o.store.onWake?.(() => { if (this.#free() > 0) this.#schedule(); }) ?? null;
    this.#reclaimDue = true;
    this.#schedule();
  }

  /**
   * Safety mode: while paused, nothing new is claimed (in-flight steps go on and heartbeat).
   * Used when this node's own standing is not ALIVE.
   */
  setPaused(paused: boolean): void {
    if (this.#paused === paused) return;
    this.#paused = paused;
    if (!paused) this.#schedule();
  }

  /** Stops renewing leases (after the last in-flight step settled, or when they are being given up). */
  stopHeartbeats(): void {
    if (this.#heartbeatTimer) clearInterval(this.#heartbeatTimer);
    this.#heartbeatTimer = null;
  }

  /** Stops claiming new steps and gives back the leases of prefetched ones; running ones go on and keep heartbeating. */
  stopClaiming(): void {
    this.#claiming = false;
    const reason = new RelayMeshError(ErrorCode.ABORTED, "engine is closing");
    for (const f of this.#waiting.splice(0)) this.#abort(f, "release", reason);
    for (const t of this.#timers) clearInterval(t);
    this.#timers = [];
    this.#unwake?.();
    this.#unwake = null;
    if (this.#retryTimer) clearTimeout(this.#retryTimer);
    this.#retryTimer = null;
  }

  /** Resolves when nothing is in flight and the mailbox is committed. */
  idle(): Promise<void> {
    if (this.#isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /** Aborts every in-flight attempt; their leases are released (shutdown) or dropped. */
  abortAll(disposition: "release" | "drop", reason: RelayMeshError): void {
    for (const f of this.#inflight.values()) this.#abort(f, disposition, reason);
  }

  /** Aborts the attempts held here under these leases (cancelled elsewhere); their results are dropped. */
  abortRefs(refs: readonly LeaseRef[], reason: RelayMeshError): void {
    for (const ref of refs) {
      const f = this.#inflight.get(ref.stepKey);
      if (f && f.step.leaseEpoch === ref.leaseEpoch) this.#abort(f, "drop", reason);
    }
  }

  /** Replaces the settings used for new leases, retries and the picker (hot reload). */
  updateSettings(settings: Settings): void {
    this.#settings = settings;
  }

  /** Commits whatever is queued, then stops. */
  async flushNow(): Promise<void> {
    this.#schedule();
    while (this.#flushScheduled || this.#flushing || this.#submitScheduled || this.#submitting) {
      await (this.#flushing ?? this.#submitting ?? new Promise((r) => setImmediate(r)));
    }
  }

  /**
   * A node cut off from the store must not go on past its leases: an attempt whose lease could
   * not be renewed is stopped by the monotonic clock before the lease ends (its last fifth).
   */
  #abortOverdue(): void {
    const cutoff = performance.now() + this.#settings.leaseTimeoutMs * LEASE_SAFETY_FRACTION;
    for (const f of this.#inflight.values()) {
      if (f.disposition === "commit" && cutoff > f.leaseDeadline) {
        this.#abort(f, "drop", new LeaseLostError(`lease of step "${f.step.stepId}" (task ${f.step.taskId}) could not be renewed in time`));
      }
    }
  }

  #free(): number {
    if (!this.#claiming || this.#paused) return 0;
    return claimLimit(this.#settings.claimPolicy, this.capacity - this.#inflight.size, this.#inflight.size, this.#load);
  }

  /**
   * Sets this node's load next to the other live nodes' (see `relativeLoad`), which `resource_usage`
   * claims scale by from then on; null: the machine's own load.
   */
  setRelativeLoad(load: number | null): void {
    this.#relativeLoad = load;
  }

  /** The node's load for `resource_usage`: relative to the other nodes once known, else the machine's, read at most once a second. */
  readonly #load = (): number => {
    if (this.#relativeLoad !== null) return this.#relativeLoad;
    const now = performance.now();
    if (now - this.#loadAt > 1_000) { this.#loadValue = machineLoad(); this.#loadAt = now; }
    return this.#loadValue;
  };

  #isIdle(): boolean {
    return this.#inflight.size === 0 && !this.#flushing && !this.#flushScheduled && !this.#submitting && !this.#submitScheduled && !this.#hasMail();
  }

  #hasMail(): boolean {
    return this.#ops.length + this.#submits.length + this.#completions.length + this.#failures.length + this.#releases.length +
      this.#kvWrites.length + this.#progress.length > 0 || this.#renewDue;
  }

  #schedule(): void {
    if (this.#windowTimer) { clearTimeout(this.#windowTimer); this.#windowTimer = null; }
    if (this.#flushScheduled || this.#flushing) return;
    this.#flushScheduled = true;
    setImmediate(() => {
      this.#flushScheduled = false;
      this.#flushing = this.#flush().finally(() => {
        this.#flushing = null;
        if (this.#hasMail() || this.#reclaimDue || this.#wakeDue) this.#schedule();
        else if (this.#isIdle()) for (const w of this.#idleWaiters.splice(0)) w();
      });
    });
  }

  /**
   * Submissions that arrive while a group commit is being written go out at once in a commit of
   * their own, queued right behind it in the store (pipelined), instead of waiting for it to
   * return. Each is still acknowledged only once its own commit is durable.
   */
  #pipelineSubmits(): void {
    if (this.#submitting || this.#submitScheduled) return;
    this.#submitScheduled = true;
    setImmediate(() => {
      this.#submitScheduled = false;
      if (!this.#flushing || this.#submits.length === 0) return this.#schedule();
      // The group commit in flight was sent before them: its claim cannot have seen their steps.
      this.#sendSubmits(true);
    });
  }

  /** Commits the queued submissions on their own, beside the group commit; `claimAfter`: claim again once they are in. */
  #sendSubmits(claimAfter: boolean): void {
    this.#submitting = this.#flushSubmits().finally(() => {
      this.#submitting = null;
      if (claimAfter) this.#wakeDue = true;
      if (this.#flushing) { if (this.#submits.length > 0) this.#pipelineSubmits(); } else this.#schedule();
    });
  }

  async #flushSubmits(): Promise<void> {
    const submits = this.#submits;
    this.#submits = [];
    const batch: CommitBatch = {
      nowMs: this.#now(), nodeId: this.#o.nodeId, leaseTimeoutMs: this.#settings.leaseTimeoutMs, submissions: submits.map((s) => s.task),
      completions: [], failures: [], renewals: [], releases: [], releaseRetriesLimit: 0, reclaimExpiredLimit: 0, claim: null,
    };
    let result: CommitResult;
    try {
      result = await this.#o.store.commit(batch);
    } catch (error) {
      for (const s of submits) s.reject(error);
      this.#o.emit("engine:error", { error: error as Error });
      return;
    }
    this.#acknowledge(submits, result);
  }

  #acknowledge(submits: PendingSubmit[], result: CommitResult): void {
    submits.forEach((s, i) => {
      const outcome = result.submitted[i]!;
      if (outcome.error) s.reject(errorFromWire(outcome.error, ErrorCode.STORE));
      else s.resolve({ taskId: outcome.taskId, created: outcome.created, steps: outcome.steps });
    });
    for (const s of result.submitted) if (!s.error) this.#o.emit("task:submitted", { taskId: s.taskId, created: s.created });
  }

  async #flush(): Promise<void> {
    for (const op of this.#ops.splice(0)) await op();
    // Submissions beside results go out first, in a short commit of their own, so they are
    // acknowledged after it rather than after the whole group, and the submitters' next ones meet
    // the group in flight. An ordered store applies the group right behind it (its claim sees them);
    // beside a concurrent one the group's claim may not have, so a claim follows.
    const pipelining = this.#o.store.pipelining;
    if (pipelining && this.#submits.length > 0 && this.#completions.length + this.#failures.length > 0 && !this.#submitting) {
      this.#sendSubmits(pipelining === "concurrent");
    }
    const submits = this.#submits;
    const completions = this.#completions;
    const failures = this.#failures;
    const releases = this.#releases;
    const kvWrites = this.#kvWrites;
    const progress = this.#progress;
    this.#submits = []; this.#completions = []; this.#failures = []; this.#releases = []; this.#kvWrites = []; this.#progress = [];
    const renewals = this.#renewDue ? [...this.#inflight.values()].filter((f) => f.disposition === "commit").map((f) => f.step) : [];
    this.#renewDue = false;
    this.#wakeDue = false;
    const reclaim = this.#reclaimDue && this.#claiming;
    this.#reclaimDue = false;
    const free = this.#free();
    const batch: CommitBatch = {
      nowMs: this.#now(), nodeId: this.#o.nodeId, leaseTimeoutMs: this.#settings.leaseTimeoutMs,
      submissions: submits.map((s) => s.task), completions, failures, renewals, releases,
      kvWrites: kvWrites.map((w) => w.write), progress,
      releaseRetriesLimit: this.#claiming ? this.#settings.retryDispatchLimit : 0,
      reclaimExpiredLimit: reclaim ? 100 : 0,
      claim: free > 0 ? { ...this.#picker.plan(free), agents: this.#agentIds, rateLimitedMax: Math.max(0, this.#o.concurrency - this.#running - this.#waiting.length) } : null,
    };
    if (!batch.claim && !reclaim && batch.submissions.length + completions.length + failures.length + renewals.length + releases.length +
      kvWrites.length + progress.length === 0) return;
    const renewedAt = performance.now();
    let result: CommitResult;
    this.#flushStartedAt = renewedAt;
    try {
      result = await this.#o.store.commit(batch);
    } catch (error) {
      this.#flushStartedAt = null;
      for (const s of submits) s.reject(error);
      for (const w of kvWrites) w.reject(error);
      // Results stay owed: put them back and try again shortly; the leases still fence them.
      this.#completions.unshift(...completions);
      this.#failures.unshift(...failures);
      this.#releases.unshift(...releases);
      this.#o.emit("engine:error", { error: error as Error });
      this.#abortOverdue();
      // Back off while the store stays unreachable (100 ms doubling to 5 s); the next success resets it.
      this.#failedCommits++;
      await new Promise((r) => setTimeout(r, Math.min(5_000, 100 * 2 ** Math.min(6, this.#failedCommits - 1))));
      return;
    }
    this.#failedCommits = 0;
    this.#flushStartedAt = null;
    if (completions.length + failures.length > 0 || result.claimed.length > 0) this.#ahead.commitTook(performance.now() - renewedAt);
    this.#acknowledge(submits, result);
    if (batch.claim) {
      const order = this.#picker.record(result.claimed.map((c) => c.priority), result.claimBacklog);
      result.claimed = order.map((i) => result.claimed[i]!);
    }
    kvWrites.forEach((w, i) => {
      const outcome = result.kvResults[i]!;
      w.resolve(outcome);
      if (outcome === "ok") this.#o.emit("kv:changed", { namespace: w.write.namespace, keys: w.write.entries.map((e) => e.key), writer: w.write.writer });
    });
    this.#afterCommit(result, renewals, renewedAt, failures);
  }

  #afterCommit(result: CommitResult, renewals: LeaseRef[], renewedAt: number, failures: StepFailure[]): void {
    const refusedKeys = new Set<string>();
    for (const c of result.refused) {
      let trace: { traceId: string; spanId: string | null } | null = null;
      for (const [id, ran] of this.#ran) {
        if (ran.taskId === c.taskId && ran.stepId === c.stepId) { trace = ran; this.#ran.delete(id); }
      }
      for (const f of trace ? [] : this.#inflight.values()) {
        if (f.step.taskId === c.taskId && f.step.stepId === c.stepId) trace = { traceId: f.step.traceId, spanId: f.spanId };
      }
      refusedKeys.add(`${c.taskId}\u0000${c.stepId}`);
      this.#o.emit("lease:conflict", { ...c, traceId: trace?.traceId ?? null, spanId: trace?.spanId ?? null });
    }
    // Cancelled first: a renewal refused in the same batch must not hide the reason (the cancel).
    for (const ref of result.cancelledRunning) {
      const f = this.#inflight.get(ref.stepKey);
      if (f) this.#abort(f, "drop", new RelayMeshError(ErrorCode.ABORTED, `step "${ref.stepId}" was cancelled (another step of the task failed and failFast is set)`));
    }
    const lease = this.#settings.leaseTimeoutMs;
    for (const r of renewals) {
      const f = this.#inflight.get(r.stepKey);
      if (!f || f.step.leaseEpoch !== r.leaseEpoch) continue;
      if (refusedKeys.has(`${r.taskId}\u0000${r.stepId}`)) {
        this.#abort(f, "drop", new LeaseLostError(`lease of step "${r.stepId}" (task ${r.taskId}) moved on past epoch ${r.leaseEpoch}`));
      } else {
        f.leaseDeadline = renewedAt + lease;
      }
    }
    const attempts = new Map(failures.map((f) => [f.stepKey, f.attempt]));
    for (const o of result.outcomes) {
      const ran = this.#ran.get(o.ref.stepKey);
      this.#ran.delete(o.ref.stepKey);
      if (o.kind === "succeeded") {
        this.stats.succeeded++;
        this.#o.emit("step:succeeded", { taskId: o.ref.taskId, stepId: o.ref.stepId, attempt: ran?.attempt ?? 0, durationMs: ran?.durationMs ?? 0 });
        continue;
      }
      this.stats.failed++;
      this.#o.emit("step:failed", {
        taskId: o.ref.taskId, stepId: o.ref.stepId, attempt: attempts.get(o.ref.stepKey) ?? 0, willRetry: o.kind === "retrying",
        retryAtMs: o.kind === "retrying" ? o.atMs : null, error: o.error,
      });
    }
    if (result.reclaimed > 0) this.#o.emit("lease:reclaimed", { count: result.reclaimed });
    for (const t of result.finishedTasks) this.#o.emit("task:finished", t);
    if (result.claimed.length > 0) this.#hold(result.claimed);
    if (result.nextRetryAtMs !== null) this.#armRetryTimer(result.nextRetryAtMs);
  }

  /** Wakes at the earliest due retry, delayed start or rate-limit token (the store reports it after each commit). */
  #armRetryTimer(atMs: number): void {
    if (!this.#claiming || atMs >= this.#retryTimerAt) return;
    if (this.#retryTimer) clearTimeout(this.#retryTimer);
    this.#retryTimerAt = atMs;
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = null;
      this.#retryTimerAt = Infinity;
      this.#schedule();
    }, Math.min(MAX_TIMER_MS, Math.max(0, atMs - this.#now())));
    this.#retryTimer.unref();
  }

  /** Takes the lease of claimed steps; they run as slots free, in claim order. */
  #hold(steps: ClaimedStep[]): void {
    const deadline = performance.now() + this.#settings.leaseTimeoutMs;
    for (const step of steps) {
      const f: InFlight = { step, running: false, settled: false, startedAt: 0, leaseDeadline: deadline, disposition: "commit", spanId: null };
      this.#inflight.set(step.stepKey, f);
      this.#waiting.push(f);
    }
    this.#pump();
  }

  /**
   * A pump after the results that arrived in this turn of the event loop: the slots they freed
   * are filled with one thread message per thread, not one message per result.
   */
  #pumpSoon(): void {
    if (this.#pumpScheduled) return;
    this.#pumpScheduled = true;
    setImmediate(() => {
      this.#pumpScheduled = false;
      this.#pump();
    });
  }

  /** Hands waiting steps to the pool while slots are free, several per thread message. */
  #pump(): void {
    const n = Math.min(this.#o.concurrency - this.#running, this.#waiting.length);
    if (n <= 0) return;
    const pool = this.#o.pool!;
    const batch = !this.#hasCaps
      ? (n === this.#waiting.length ? this.#waiting.splice(0) : this.#waiting.splice(0, n))
      : this.#takeWithinCaps(n);
    const runs: StepRun[] = [];
    const tokens: InFlight[] = [];
    let unknown: InFlight[] | null = null;
    const now = performance.now();
    const maxPayloadBytes = this.#settings.maxPayloadBytes;
    for (const f of batch) {
      const step = f.step;
      f.running = true;
      f.startedAt = now;
      this.#running++;
      this.#o.emit("step:started", { taskId: step.taskId, stepId: step.stepId, agent: step.agent, attempt: step.attempt, leaseEpoch: step.leaseEpoch });
      const agent = this.#o.agents.ref(step.agent);
      if (!agent) { (unknown ??= []).push(f); continue; }
      const run: StepRun = {
        key: `${step.stepKey}:${step.leaseEpoch}`, taskId: step.taskId, stepId: step.stepId, attempt: step.attempt, agent,
        payloadJson: step.payloadJson, timeoutMs: step.timeoutMs, traceparent: traceparent(step.traceId, (f.spanId = newSpanId())), maxPayloadBytes,
        killGraceMs: SCRIPT_KILL_GRACE_MS, priority: step.priority,
      };
      if (agent.kind === "script" && agent.config.mode === "persistent") {
        this.#runHere(f, agent.config, run);
        continue;
      }
      runs.push(run);
      tokens.push(f);
    }
    if (runs.length > 0) pool.run(runs, tokens, this.#settleRun);
    for (const f of unknown ?? []) {
      this.#onResult(f, { type: "error", retryable: false, retryDelayMs: null, error: {
        name: "RelayMeshError", code: ErrorCode.UNKNOWN_AGENT, message: `agent "${f.step.agent}" is not registered on node "${this.#o.nodeId}"`,
      } });
    }
  }

  /**
   * Up to `n` waiting steps in claim order, skipping (not blocking on) those whose agent is at
   * its own concurrency cap.
   */
  #takeWithinCaps(n: number): InFlight[] {
    const taken: InFlight[] = [];
    const kept: InFlight[] = [];
    for (const f of this.#waiting) {
      const cap = taken.length < n ? this.#o.agents.concurrency(f.step.agent) : undefined;
      if (taken.length >= n || (cap !== undefined && (this.#capped.get(f.step.agent) ?? 0) >= cap)) {
        kept.push(f);
        continue;
      }
      if (cap !== undefined) this.#capped.set(f.step.agent, (this.#capped.get(f.step.agent) ?? 0) + 1);
      taken.push(f);
    }
    this.#waiting = kept;
    return taken;
  }

  /** Persistent script agents run on this thread: their processes outlive steps. */
  #runHere(f: InFlight, config: ScriptAgentConfig, run: StepRun): void {
    const controller = new AbortController();
    f.abortHere = (reason) => controller.abort(reason);
    this.#scriptHost ??= new PersistentScriptHost({ maxPayloadBytes: this.#settings.maxPayloadBytes, killGraceMs: SCRIPT_KILL_GRACE_MS });
    const key = run.key;
    this.#scriptHost.run(config, run, {
      heartbeat: () => this.onAgentMessage({ type: "agent-heartbeat", key }),
      progress: (pct, message) => this.onAgentMessage({ type: "agent-progress", key, pct, message }),
      kv: (op) => this.kvRequest(key, op),
    }, controller.signal).then(
      (result) => this.#onResult(f, result),
      (error) => this.#onResult(f, { type: "error", error: errorToWire(error), retryable: true, retryDelayMs: null }),
    );
  }

  /** Ends the persistent script agents' processes (after the last step settled). */
  async closeAgents(): Promise<void> {
    const host = this.#scriptHost;
    this.#scriptHost = null;
    await host?.close();
  }

  readonly #settleRun = (f: InFlight, result: StepResultMessage): void => this.#onResult(f, result);

  #abort(f: InFlight, disposition: "release" | "drop", reason: RelayMeshError): void {
    if (f.disposition !== "commit") return;
    f.disposition = disposition;
    if (f.running) {
      if (f.abortHere) f.abortHere(reason);
      else this.#o.pool!.abort(`${f.step.stepKey}:${f.step.leaseEpoch}`, reason);
      return;
    }
    // Never handed to the pool: settle it here, as an aborted attempt.
    const i = this.#waiting.indexOf(f);
    if (i >= 0) this.#waiting.splice(i, 1);
    this.#onResult(f, { type: "error", error: errorToWire(reason), retryable: true, retryDelayMs: null });
  }

  #onResult(f: InFlight, result: StepResultMessage): void {
    if (f.settled) return;
    f.settled = true;
    const step = f.step;
    this.#inflight.delete(step.stepKey);
    if (f.running) {
      this.#running--;
      const capped = this.#capped.get(step.agent);
      if (capped !== undefined) this.#capped.set(step.agent, capped - 1);
      this.#pumpSoon();
    }
    const durationMs = performance.now() - f.startedAt;
    if (f.running) this.#ahead.stepTook(durationMs);
    // An attempt whose thread was ended for another's sake runs again, uncounted.
    if (f.disposition === "release" || (f.disposition === "commit" && isWorkerLost(result))) this.#releases.push(step);
    else if (f.disposition === "commit") {
      this.stats.executed++;
      this.#ran.set(step.stepKey, { taskId: step.taskId, stepId: step.stepId, attempt: step.attempt, durationMs, traceId: step.traceId, spanId: f.spanId });
      if (result.type === "result") {
        this.#completions.push({
          stepKey: step.stepKey, taskId: step.taskId, stepId: step.stepId, leaseEpoch: step.leaseEpoch, outputJson: result.outputJson, dependents: step.dependents,
        });
      } else {
        this.#failures.push({ ...pickRef(step), attempt: step.attempt, error: result.error, next: this.#nextAfterFailure(step, result) });
      }
    }
    this.#scheduleAfterResult();
  }

  /**
   * Group commit: a result alone does not start a transaction while most slots are still busy
   * and likely to finish in a moment; it waits for half the slots to free up or for
   * GROUP_COMMIT_WINDOW_MS, whichever comes first. Submissions and idle slots flush at once.
   */
  #scheduleAfterResult(): void {
    if (this.#flushScheduled || this.#flushing) return;
    const threshold = Math.ceil(this.capacity / 2);
    const starving = this.#waiting.length === 0 && this.#running < this.#o.concurrency;
    if (!this.#claiming || starving || this.#free() >= threshold || this.#submits.length > 0) return this.#schedule();
    if (this.#windowTimer) return;
    this.#windowTimer = setTimeout(() => { this.#windowTimer = null; this.#schedule(); }, GROUP_COMMIT_WINDOW_MS);
  }

  #nextAfterFailure(step: ClaimedStep, result: Extract<StepResultMessage, { type: "error" }>): StepFailure["next"] {
    if (!result.retryable || step.attempt >= step.maxAttempts) return { kind: "dead" };
    const delay = result.retryDelayMs ?? backoffMs(step.attempt, step);
    return { kind: "retry", atMs: this.#now() + delay };
  }
}

function pickRef(step: ClaimedStep): LeaseRef {
  return { stepKey: step.stepKey, taskId: step.taskId, stepId: step.stepId, leaseEpoch: step.leaseEpoch };
}

export type { WireError };
