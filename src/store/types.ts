import type { WireError } from "../errors.js";

export const TASK_STATUSES = ["PENDING", "RUNNING", "SUCCESS", "DEAD_LETTER", "CANCELLED"] as const;
export type TaskStatus = (typeof TASK_STATUSES)[number];
/**
 * SCHEDULED: waits for its start time (`notBefore`/`delayMs`); QUEUED: waits for a slot of its
 * concurrency key; THROTTLED: waits for a token of its rate limit. None of them costs an attempt.
 */
export const STEP_STATUSES = [
  "WAITING", "SCHEDULED", "QUEUED", "THROTTLED", "READY", "RUNNING", "RETRY_WAIT", "SUCCESS", "DEAD_LETTER", "CANCELLED", "SKIPPED",
] as const;
export type StepStatus = (typeof STEP_STATUSES)[number];
export const TERMINAL_TASK_STATUSES: ReadonlySet<TaskStatus> = new Set(["SUCCESS", "DEAD_LETTER", "CANCELLED"]);

/** A step to insert; retry policy and priority are already resolved. */
export interface NewStep {
  stepId: string;
  agent: string;
  /** JSON text of the step's input ("null" when absent). */
  inputJson: string;
  /** 2 high, 1 normal, 0 low. */
  priority: number;
  dependsOn: string[];
  maxAttempts: number;
  baseBackoffMs: number;
  maxBackoffMs: number;
  timeoutMs: number | null;
  /** Starts no earlier than this (epoch ms); null: as soon as its dependencies succeeded. */
  notBeforeMs?: number | null;
  /** At most `limit` steps with this key hold a slot (READY, RUNNING or RETRY_WAIT) at once, across every node. */
  concurrency?: { key: string; limit: number; strategy: ConcurrencyStrategy } | null;
  /** A token bucket (`bucket`: the limit's name, and its key when keyed) every attempt takes a token from before it runs. */
  rateLimit?: { name: string; bucket: string; perSecond: number; burst: number } | null;
}

export type ConcurrencyStrategy = "queue" | "cancel-newest" | "cancel-in-progress";

export interface NewTask {
  taskId: string;
  name: string | null;
  priority: number;
  idempotencyKey: string | null;
  failFast: boolean;
  /** 32 hex: the W3C trace every step of this task belongs to. */
  traceId: string;
  /** 16 hex: the caller's span, when the submitter passed a traceparent. */
  parentSpanId: string | null;
  /** Past this (epoch ms) the unfinished rest is cancelled, reason "deadline". */
  deadlineAtMs?: number | null;
  /**
   * A second submission with `key` within `windowMs` of the first returns the first task
   * ("drop"), or replaces its steps' inputs while none has started ("replace").
   */
  dedupe?: { key: string; windowMs: number; mode: "drop" | "replace" } | null;
  /** The schedule (and slot) that fired this task, if one did. */
  schedule?: { name: string; slotKey: string } | undefined;
  steps: NewStep[];
}

/**
 * Identifies one lease: the step and the epoch it was claimed with. `stepKey` is an opaque
 * value the store hands out (compare it, never parse it).
 */
export interface LeaseRef {
  stepKey: string;
  taskId: string;
  stepId: string;
  leaseEpoch: number;
}

/** A step claimed for this node, ready to dispatch. */
export interface ClaimedStep extends LeaseRef {
  agent: string;
  /** JSON text of `{ "input": …, "deps": { stepId: output… }, "kv": { key: value… } }` (kv: the task's checkpoints). */
  payloadJson: string;
  attempt: number;
  maxAttempts: number;
  baseBackoffMs: number;
  maxBackoffMs: number;
  timeoutMs: number | null;
  priority: number;
  traceId: string;
  leaseExpiresAtMs: number;
  /** The task's deadline (epoch ms), if it has one. */
  deadlineAtMs: number | null;
  /** How many steps of its task depend on it (its success can unlock none of them when 0). */
  dependents: number;
}

export interface StepCompletion extends LeaseRef {
  outputJson: string;
  /** The step's ClaimedStep.dependents: a completion known to unlock nothing needs no claim after it. */
  dependents?: number;
}

export interface StepFailure extends LeaseRef {
  /** The attempt that failed (1 for the first). */
  attempt: number;
  error: WireError;
  /** Where the step goes next: back to RETRY_WAIT until `atMs`, or to the dead letters. */
  next: { kind: "retry"; atMs: number } | { kind: "dead" };
}

/**
 * A claim, as data (the store never calls back into the engine inside a transaction). The store
 * first takes up to `quotas[c]` of the oldest READY steps of each priority class c (low, normal,
 * high: anti-starvation picks; those taken while a higher class had steps waiting are counted
 * in the `low_starvation_count` counter), then fills the rest of `limit` by priority (high
 * first), then age (`ready_at`), then insertion order.
 * Claimed steps come back in that order.
 */
export interface ClaimRequest {
  limit: number;
  /** Only steps of these agents (the ones this node can run); undefined: any agent. */
  agents?: readonly string[];
  quotas?: readonly [low: number, normal: number, high: number];
  /**
   * Of steps with a rate limit, claim at most this many (default: no cap): the node's free
   * running slots, since a token is taken at claim and a step that then waited for a slot would
   * start late, in a burst with later ones.
   */
  rateLimitedMax?: number;
}

/**
 * Everything one group commit applies, in one transaction, in this order. A batch never fails
 * for one item: a duplicate idempotency key returns the existing task, and a submission the
 * store cannot insert is reported in its own `submitted` entry while the rest of the batch
 * (renewals, results, claims) commits.
 */
export interface CommitBatch {
  /** The time of this batch, normally `store.now()` (the store's clock); tests inject their own. */
  nowMs: number;
  nodeId: string;
  leaseTimeoutMs: number;
  submissions: NewTask[];
  /** Checkpoint writes: fenced by `ref` (an agent's) or not (`ref: null`: an operator's). Before results, so a step's last checkpoint never commits after its output. */
  kvWrites?: KvWrite[];
  /** Progress reports of running steps (fenced; a stale one is dropped silently). */
  progress?: StepProgress[];
  /** Lease renewals of running steps; before results, so a failFast cancel in the same batch does not turn them into conflicts. */
  renewals: LeaseRef[];
  completions: StepCompletion[];
  failures: StepFailure[];
  /** Leases given back unfinished (shutdown): the step is READY again and the attempt is not counted. */
  releases: LeaseRef[];
  /** Move up to this many due RETRY_WAIT steps back to READY. */
  releaseRetriesLimit: number;
  /** Reclaim up to this many RUNNING steps whose lease expired (0: skip). */
  reclaimExpiredLimit: number;
  /** Claim READY steps for `nodeId` (see ClaimRequest). */
  claim: ClaimRequest | null;
}

export type StepOutcome =
  | { kind: "succeeded"; ref: LeaseRef }
  | { kind: "retrying"; ref: LeaseRef; atMs: number; error: WireError }
  | { kind: "dead"; ref: LeaseRef; error: WireError };

export interface CommitResult {
  /** One per submission, in order; `error` when that submission alone could not be inserted, `deduplicated` when a dedupe window returned an earlier task. */
  submitted: SubmitOutcome[];
  /** Commits and renewals refused because the lease moved on (recorded as lease conflicts). */
  refused: LeaseConflict[];
  /** Accepted completions and failures. */
  outcomes: StepOutcome[];
  /** RUNNING steps cancelled by this batch (failFast): abort them if they run here. */
  cancelledRunning: LeaseRef[];
  reclaimed: number;
  released: number;
  /** One per kvWrites entry, in order. */
  kvResults: ("ok" | "refused")[];
  claimed: ClaimedStep[];
  /**
   * Per class (low, normal, high): whether READY steps of it were left unclaimed by this claim
   * (all false without a claim), so the picker can tell a skipped class from an empty one.
   */
  claimBacklog: [low: boolean, normal: boolean, high: boolean];
  finishedTasks: { taskId: string; status: TaskStatus }[];
  /** Earliest `ready_at` among steps in RETRY_WAIT, SCHEDULED or THROTTLED (when the next one falls due), if any. */
  nextRetryAtMs: number | null;
}

/** Counter prefix of submissions a dedupe window absorbed: `dedupe_total:dropped`, `dedupe_total:replaced`. */
export const DEDUPE_COUNTER = "dedupe_total";

export interface SubmitOutcome {
  taskId: string;
  created: boolean;
  steps: number;
  /** Set when this submission was not inserted (the rest of its batch was). */
  error?: WireError;
  /** "dropped": the earlier task of the dedupe key was returned as it is; "replaced": its inputs were replaced. */
  deduplicated?: "dropped" | "replaced";
}

export interface LeaseConflict {
  taskId: string;
  stepId: string;
  expectedLeaseEpoch: number;
  actualLeaseEpoch: number | null;
  nodeId: string;
  /** What was refused: "complete", "fail", "heartbeat", "checkpoint". */
  operation: string;
  atMs: number;
}

export interface StepRecord {
  stepId: string;
  agent: string;
  status: StepStatus;
  priority: number;
  attempt: number;
  maxAttempts: number;
  dependsOn: string[];
  input: unknown;
  output: unknown;
  error: WireError | null;
  leaseOwner: string | null;
  leaseEpoch: number;
  leaseExpiresAtMs: number | null;
  readyAtMs: number | null;
  startedAtMs: number | null;
  finishedAtMs: number | null;
  /** Last progress a running attempt reported (0–100), and its message. */
  progressPct: number | null;
  progressMessage: string | null;
  /** Replay rounds this step went through. */
  replays: number;
  /** Flow control: start time, concurrency key and limit, rate limit name (null when not used). */
  notBeforeMs: number | null;
  concurrencyKey: string | null;
  concurrencyLimit: number | null;
  rateLimit: string | null;
}

export interface TaskRecord {
  taskId: string;
  name: string | null;
  status: TaskStatus;
  priority: number;
  idempotencyKey: string | null;
  failFast: boolean;
  traceId: string;
  createdAtMs: number;
  updatedAtMs: number;
  finishedAtMs: number | null;
  /** Past this (epoch ms) the unfinished rest is cancelled. */
  deadlineAtMs: number | null;
  /** Why the task was cancelled ("deadline", "concurrency", an operator's reason…), when it was. */
  cancelReason: string | null;
  /** The schedule that fired this task, if one did. */
  scheduleName: string | null;
}

export interface TaskWithSteps extends TaskRecord {
  steps: StepRecord[];
  edges: [string, string][];
}

/** Figures for `stats`, `health` and `/metrics`, read in one consistent snapshot. */
export interface OpsSnapshot {
  atMs: number;
  tasks: Record<TaskStatus, number>;
  steps: Record<StepStatus, number>;
  /** ready_at of the step that has waited longest in READY, or null when none waits. */
  oldestReadyAtMs: number | null;
  /** Durations (finished − started) of steps finished in the last hour, ascending, at most 10,000 (the newest). */
  recentStepDurationsMs: number[];
  /** Finished steps by duration bucket (upper bounds in ms; the last bucket is +Inf), over all kept history. */
  stepDurationBuckets: { leMs: number; count: number }[];
  stepDurationSumMs: number;
  /** Tasks that reached DEAD_LETTER in the last hour. */
  deadLetteredLastHour: number;
  counters: Record<string, number>;
  /** READY steps per agent, with the time the oldest of them became READY. */
  readyByAgent: { agent: string; count: number; oldestReadyAtMs: number }[];
  /** Node rows by standing ("ALIVE", "SUSPECT", "DEAD"; "STOPPED" after a graceful exit). */
  nodesByStatus: Record<string, number>;
  /** RUNNING steps by the standing of their owner (as nodesByStatus; "UNKNOWN" when the owner has no row). */
  runningByOwnerStatus: Record<string, number>;
  /** Time and flow control: schedules (paused ones among them), open tasks with a deadline, cancelled tasks by reason ("deadline", "concurrency"…). */
  flow?: { schedules: number; schedulesPaused: number; openWithDeadline: number; cancelledByReason: Record<string, number> };
}

/** Upper bounds of the step duration histogram, in ms. */
export const STEP_DURATION_BUCKETS_MS = [5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000, 60_000, 300_000] as const;

export interface CancelResult {
  /** The task's status after the cancel. */
  status: TaskStatus;
  /** Steps this cancel moved to CANCELLED. */
  cancelledSteps: string[];
  /** RUNNING steps cancelled (hard mode): abort them where they run; their late results are refused. */
  cancelledRunning: LeaseRef[];
}

export interface ReplayResult {
  /** False when the task was not DEAD_LETTER (nothing changed). */
  replayed: boolean;
  status: TaskStatus;
  /** Steps made runnable again (dead, skipped and cancelled ones). */
  steps: string[];
  /** The task's replay round after this replay. */
  round: number;
}

export interface PurgeQuery {
  /** SUCCESS and CANCELLED tasks finished before this are deleted. */
  finishedBeforeMs: number;
  /** DEAD_LETTER tasks finished before this are deleted. */
  deadBeforeMs: number;
  /** Idempotency keys of tasks created before this are forgotten (the tasks stay). */
  idempotencyBeforeMs: number;
  /** Only tasks whose name starts with this (e.g. `bench:` for benchmark tasks run in place); all tasks when absent. */
  namePrefix?: string;
}

export interface PurgeResult {
  finishedTasks: number;
  deadLetters: number;
  idempotencyKeys: number;
}

/** What a working node reports about its machine and itself on each heartbeat. */
export interface NodeLoad {
  /** CPU load per core (1-minute average), 0–1 and above when overloaded. */
  cpu: number;
  /** Share of the machine's memory in use, 0–1. */
  memory: number;
  /** Step attempts running or leased here. */
  running: number;
  /** Step attempts this node runs at once at most (concurrency + prefetch). */
  capacity: number;
}

/** A node's heartbeat. Fields left out keep the values of its last heartbeat. */
export interface NodeHeartbeat {
  nodeId: string;
  hostname: string;
  pid: number;
  /** The agents this node can run (sorted). */
  agents?: readonly string[];
  load?: NodeLoad;
}

export interface NodeRecord {
  nodeId: string;
  hostname: string;
  pid: number;
  /** "running" while the process works; "stopped" after a graceful exit. */
  state: "running" | "stopped";
  startedAtMs: number;
  lastHeartbeatMs: number;
  stoppedAtMs: number | null;
  /** Standing by heartbeat age (see src/mesh/membership.ts), as last evaluated by a maintenance tick. */
  status: "ALIVE" | "SUSPECT" | "DEAD";
  statusSinceMs: number;
  /** The agents it advertised, or null when it never did (a node of an older version: any agent). */
  agents: string[] | null;
  /** Its last reported load, or null. */
  load: NodeLoad | null;
}

/** One entry of the ownership timeline: a reclaim or a refused write. */
export interface OwnershipEvent {
  atMs: number;
  /** "lease-conflict", "dead-owner-reclaim". */
  kind: string;
  taskId: string | null;
  stepId: string | null;
  /** The node that acted (reclaimer) or was refused. */
  nodeId: string;
  /** The previous owner, for reclaims. */
  fromNode: string | null;
  details: Record<string, unknown>;
}

export interface HealthCheck {
  name: string;
  ok: boolean;
  detail: string;
}

/** Writes to one namespace of the checkpoint store; `valueJson: null` deletes the key. */
export interface KvWrite {
  ref: LeaseRef | null;
  namespace: string;
  entries: { key: string; valueJson: string | null }[];
  /** Who wrote (kept on the row): "step:<task>/<step>@<epoch>", "cli:<user>"… */
  writer: string;
}

export interface StepProgress extends LeaseRef {
  pct: number;
  message: string | null;
}

export interface KvEntry {
  key: string;
  value: unknown;
  version: number;
  updatedAtMs: number;
  writer: string;
}

/** A change seen by watchers: a deleted key has `deleted: true` and no value. */
export interface KvChange extends KvEntry {
  namespace: string;
  deleted: boolean;
}

/** One entry of the settings history: which fields changed (names only), by whom, on which node. */
export interface SettingsChange {
  /** Unique per change (a UUID, or a hash of a legacy audit line), so copies between stores never double it. */
  entryId: string;
  atMs: number;
  nodeId: string | null;
  actor: string;
  result: "ok" | "error";
  changedFields: string[];
  error: string | null;
}

/**
 * One audit record as a shared store keeps it (the cluster-wide audit on PostgreSQL): the fields
 * of a line of the root's JSONL audit file, the time from the store's clock, and the node that wrote it.
 */
export interface AuditEntry {
  atMs: number;
  nodeId: string;
  action: string;
  actor: string;
  resource: string;
  result: "ok" | "refused" | "error";
  traceId: string | null;
  spanId: string | null;
  taskId: string | null;
  stepId: string | null;
  /** The record's `details`, as JSON. */
  detailsJson: string;
}

/** Which audit entries to read: every given filter must match; times are inclusive bounds in ms. */
export interface AuditFilter {
  taskId?: string;
  action?: string;
  fromMs?: number;
  toMs?: number;
  limit: number;
}

/** What to do when a slot falls due while the previous slot's task is still open. */
export type ScheduleOverlap = "skip" | "allow" | "cancel-previous";
/** Which missed slots run after downtime: none, the latest one, or all (within the catch-up window). */
export type ScheduleCatchUp = "none" | "latest" | "all";

/** A cron schedule as stored: every node sharing the store sees the same ones. */
export interface ScheduleRecord {
  name: string;
  cron: string;
  /** IANA zone the cron expression is read in (null: UTC). */
  timezone: string | null;
  /** The workflow each slot submits (as given, validated when added). */
  spec: unknown;
  overlap: ScheduleOverlap;
  catchUp: ScheduleCatchUp;
  /** Missed slots older than this are not caught up (null: no limit beyond the built-in cap). */
  catchUpWindowMs: number | null;
  /** Each slot fires up to this much later, by a fixed per-slot amount (the same on every node). */
  jitterMs: number;
  paused: boolean;
  /** The next slot not yet handled, and when it falls due (slot + its jitter); null when the cron has no future slot. */
  nextSlotMs: number | null;
  nextAtMs: number | null;
  lastSlotMs: number | null;
  lastTaskId: string | null;
  firedCount: number;
  skippedCount: number;
  createdAtMs: number;
  updatedAtMs: number;
}

/** A schedule definition to store (add or replace). */
export type ScheduleDefinition = Pick<ScheduleRecord,
  "name" | "cron" | "timezone" | "spec" | "overlap" | "catchUp" | "catchUpWindowMs" | "jitterMs" | "paused" | "nextSlotMs" | "nextAtMs">;

/** One tick's decision for one schedule, applied in one transaction by `fireSchedule`. */
export interface ScheduleFire {
  name: string;
  /**
   * Compare-and-set: applies only while the schedule's next slot is still this one, so of the
   * nodes that saw the same due slot exactly one advances it. Undefined for a manual trigger.
   */
  expectNextSlotMs?: number | null;
  nextSlotMs?: number | null;
  nextAtMs?: number | null;
  /** Slots handled: each (schedule, slotKey) is recorded once; a task is inserted only when its slot is new. */
  fires: { slotKey: string; slotMs: number; task: NewTask | null; outcome: "fired" | "skipped-overlap" }[];
  /** Slots dropped by the catch-up policy (counted as skipped). */
  missed: number;
  nodeId: string;
  nowMs: number;
}

export interface ScheduleFireResult {
  /** False when another node handled this slot first (nothing changed). */
  applied: boolean;
  /** Tasks created, one per fired slot that was new. */
  created: { slotKey: string; taskId: string }[];
}
