import { DEDUPE_COUNTER, type OpsSnapshot } from "../store/types.js";

/** Percentile (nearest rank) of an ascending array; null when empty. */
export function percentile(sorted: readonly number[], p: number): number | null {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

/** The SLA figures of `stats`, from a store snapshot. */
export function slaFigures(s: OpsSnapshot) {
  return {
    queueLagMs: s.oldestReadyAtMs === null ? 0 : Math.max(0, s.atMs - s.oldestReadyAtMs),
    stepLatencyP95Ms: percentile(s.recentStepDurationsMs, 95),
    stepLatencyP99Ms: percentile(s.recentStepDurationsMs, 99),
    deadLetterGrowth1h: s.deadLetteredLastHour,
    ...(s.flow ? { flow: flowFigures(s) } : {}),
  };
}

/** The counters `<prefix>:<label>`, by label (a null-prototype object: labels are user strings). */
function labelled(s: OpsSnapshot, prefix: string): Record<string, number> {
  const out: Record<string, number> = Object.create(null);
  for (const [name, value] of Object.entries(s.counters)) if (name.startsWith(`${prefix}:`)) out[name.slice(prefix.length + 1)] = value;
  return out;
}

/** What waits on time and flow control, for `stats`. */
function flowFigures(s: OpsSnapshot) {
  const rateLimited = labelled(s, "rate_limited_total");
  const deduplicated = labelled(s, DEDUPE_COUNTER);
  return {
    scheduledSteps: s.steps.SCHEDULED ?? 0, queuedSteps: s.steps.QUEUED ?? 0, throttledSteps: s.steps.THROTTLED ?? 0,
    schedules: s.flow!.schedules, schedulesPaused: s.flow!.schedulesPaused, scheduleFired: s.counters.schedule_fired_total ?? 0,
    scheduleSkipped: s.counters.schedule_skipped_total ?? 0, openWithDeadline: s.flow!.openWithDeadline,
    cancelledByReason: s.flow!.cancelledByReason, rateLimited,
    deduplicated: { dropped: deduplicated.dropped ?? 0, replaced: deduplicated.replaced ?? 0 },
  };
}

/**
 * Prometheus text for a store snapshot. Every figure comes from the store, so any process on
 * the root (or the PostgreSQL cluster) reports the same numbers.
 */
export async function renderMetrics(s: OpsSnapshot): Promise<{ contentType: string; text: string }> {
  // Loaded here: one-shot commands that never render metrics skip prom-client (and node:http).
  const { Counter, Gauge, Registry } = await import("prom-client");
  const registry = new Registry();
  const gauge = (name: string, help: string, labelNames: string[] = []) => new Gauge({ name, help, labelNames, registers: [registry] });
  const counter = (name: string, help: string, value: number) => {
    new Counter({ name, help, registers: [registry] }).inc(value);
  };

  const tasks = gauge("relaymesh_tasks", "Tasks by status.", ["status"]);
  for (const [status, n] of Object.entries(s.tasks)) tasks.set({ status }, n);
  const steps = gauge("relaymesh_steps", "Steps by status.", ["status"]);
  for (const [status, n] of Object.entries(s.steps)) steps.set({ status }, n);
  const sla = slaFigures(s);
  gauge("relaymesh_queue_lag_ms", "How long the oldest READY step has waited, in ms.").set(sla.queueLagMs);
  gauge("relaymesh_step_latency_p95_ms", "95th percentile step duration over the last hour, in ms.").set(sla.stepLatencyP95Ms ?? 0);
  gauge("relaymesh_step_latency_p99_ms", "99th percentile step duration over the last hour, in ms.").set(sla.stepLatencyP99Ms ?? 0);
  gauge("relaymesh_dead_letter_growth_1h", "Tasks dead-lettered in the last hour.").set(sla.deadLetterGrowth1h);
  gauge("relaymesh_cluster_epoch", "Cluster-wide fencing epoch.").set(s.counters.cluster_epoch ?? 0);
  const nodes = gauge("relaymesh_nodes", "Worker nodes by standing (STOPPED: exited gracefully).", ["status"]);
  for (const [status, n] of Object.entries(s.nodesByStatus)) nodes.set({ status }, n);
  const byOwner = gauge("relaymesh_running_steps_by_owner_status", "RUNNING steps by the standing of the node that owns them.", ["owner_status"]);
  for (const [status, n] of Object.entries(s.runningByOwnerStatus)) byOwner.set({ owner_status: status }, n);

  counter("relaymesh_low_starvation_count", "Lower-priority picks forced through by the anti-starvation guard.", s.counters.low_starvation_count ?? 0);
  counter("relaymesh_lease_conflict_total", "Writes refused because the step's lease moved on.", s.counters.lease_conflict_total ?? 0);
  counter("relaymesh_dead_owner_reclaimed_total", "RUNNING steps reclaimed from nodes declared DEAD.", s.counters.dead_owner_reclaimed_total ?? 0);
  counter("relaymesh_lease_expired_reclaimed_total", "RUNNING steps reclaimed after their lease expired.", s.counters.lease_expired_reclaimed_total ?? 0);
  const storeErrors = new Counter({ name: "relaymesh_store_errors_total", help: "Store operations that failed, by operation and error code (e.g. SQLITE_FULL, or a PostgreSQL SQLSTATE such as 57014).", labelNames: ["operation", "code"], registers: [registry] });
  for (const [name, n] of Object.entries(s.counters)) {
    const [prefix, operation, code] = name.split(":");
    if (prefix === "store_errors_total" && operation !== undefined && code !== undefined) storeErrors.inc({ operation, code }, n);
  }
  counter("relaymesh_schedule_fired_total", "Tasks fired by cron schedules.", s.counters.schedule_fired_total ?? 0);
  counter("relaymesh_schedule_skipped_total", "Schedule slots not fired: overlap skip, or missed and not caught up.", s.counters.schedule_skipped_total ?? 0);
  const limited = new Counter({ name: "relaymesh_rate_limited_total", help: "Times a step found no token of its rate limit and waited (THROTTLED).", labelNames: ["limit"], registers: [registry] });
  for (const [limit, value] of Object.entries(labelled(s, "rate_limited_total"))) limited.inc({ limit }, value);
  const deduplicated = new Counter({ name: "relaymesh_dedupe_total", help: "Submissions a dedupe window absorbed, by outcome (dropped: the first task returned; replaced: its inputs replaced).", labelNames: ["outcome"], registers: [registry] });
  for (const [outcome, value] of Object.entries(labelled(s, DEDUPE_COUNTER))) deduplicated.inc({ outcome }, value);
  if (s.flow) {
    gauge("relaymesh_schedules", "Cron schedules in the store.").set(s.flow.schedules);
    gauge("relaymesh_schedules_paused", "Paused cron schedules.").set(s.flow.schedulesPaused);
    gauge("relaymesh_tasks_with_deadline_open", "Open tasks that have a deadline.").set(s.flow.openWithDeadline);
    const byReason = gauge("relaymesh_tasks_cancelled_by_reason", "Cancelled tasks by reason (deadline, concurrency, …) still in the store.", ["reason"]);
    for (const [reason, n] of Object.entries(s.flow.cancelledByReason)) byReason.set({ reason }, n);
  }

  // The histogram is read whole from the store; prom-client's Histogram only observes, so it is written out here.
  const name = "relaymesh_step_duration_seconds";
  let text = await registry.metrics();
  let cumulative = 0;
  const lines = [`# HELP ${name} Duration of finished step attempts, from claim to result.`, `# TYPE ${name} histogram`];
  for (const b of s.stepDurationBuckets) {
    cumulative += b.count;
    lines.push(`${name}_bucket{le="${Number.isFinite(b.leMs) ? b.leMs / 1000 : "+Inf"}"} ${cumulative}`);
  }
  lines.push(`${name}_sum ${s.stepDurationSumMs / 1000}`, `${name}_count ${cumulative}`);
  text += `${lines.join("\n")}\n`;
  return { contentType: registry.contentType, text };
}
