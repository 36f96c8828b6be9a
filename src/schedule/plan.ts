import { createHash } from "node:crypto";
import { Cron } from "croner";
import type { ScheduleRecord } from "../store/types.js";

/** A slot older than this when its tick comes is "missed" (downtime), not late. */
export const ON_TIME_GRACE_MS = 10_000;
/** Missed slots looked at per catch-up at most (the newest ones). */
export const MAX_CATCH_UP_SLOTS = 1_000;
/** With no catch-up window, missed slots older than this are not looked at. */
const DEFAULT_LOOKBACK_MS = 7 * 86_400_000;

/** A parsed cron expression in a zone; throws croner's error for a bad expression or zone. */
export function cronOf(expr: string, timezone: string | null): Cron {
  const cron = new Cron(expr, { paused: true, ...(timezone ? { timezone } : {}) });
  cron.nextRun(); // a bad zone only shows when a time is computed
  return cron;
}

/** The first slot strictly after `afterMs`, or null when the expression has none. */
export function slotAfter(cron: Cron, afterMs: number): number | null {
  return cron.nextRun(new Date(afterMs))?.getTime() ?? null;
}

/** The fixed jitter of one slot: from a hash of the schedule and slot, so every node computes the same. */
export function jitterOf(name: string, slotMs: number, jitterMs: number): number {
  if (jitterMs <= 0) return 0;
  const h = createHash("sha256").update(`${name}\u0000${slotMs}`).digest();
  return h.readUInt32BE(0) % (jitterMs + 1);
}

/** When a slot falls due: the slot plus its jitter. */
export function dueAt(name: string, slotMs: number, jitterMs: number): number {
  return slotMs + jitterOf(name, slotMs, jitterMs);
}

/** The next slot to wait for after `afterMs`, and when it falls due. */
export function nextFrom(s: Pick<ScheduleRecord, "name" | "cron" | "timezone" | "jitterMs">, afterMs: number): { nextSlotMs: number | null; nextAtMs: number | null } {
  const slot = slotAfter(cronOf(s.cron, s.timezone), afterMs);
  return { nextSlotMs: slot, nextAtMs: slot === null ? null : dueAt(s.name, slot, s.jitterMs) };
}

export interface TickPlan {
  /** Slots to handle now, oldest first: fired, or skipped because the previous task is still open. */
  fires: { slotMs: number; outcome: "fired" | "skipped-overlap" }[];
  /** Slots dropped by the catch-up policy. */
  missed: number;
  /** Cancel the previous slot's open task first (overlap "cancel-previous"). */
  cancelPrevious: boolean;
  nextSlotMs: number | null;
  nextAtMs: number | null;
}

/**
 * What one tick at `nowMs` does with a due schedule. Slots from its next slot up to now that
 * are due (slot + jitter ≤ now) are on time when at most ON_TIME_GRACE_MS past due, else missed;
 * catch-up "none" fires on-time slots only (a tick a little late loses nothing), "latest" the newest due slot, "all" every due slot
 * within the window (at most MAX_CATCH_UP_SLOTS). `previousOpen`: the last fired task has not
 * finished — "skip" then records the slots as skipped, "cancel-previous" cancels it first.
 */
export function planTick(s: ScheduleRecord, nowMs: number, previousOpen: boolean): TickPlan {
  const cron = cronOf(s.cron, s.timezone);
  const lookback = nowMs - (s.catchUpWindowMs ?? DEFAULT_LOOKBACK_MS);
  let missed = 0;
  let slot = s.nextSlotMs;
  if (slot !== null && slot < lookback) {
    // Slots before the window are skipped without enumerating them one by one.
    missed++;
    slot = slotAfter(cron, lookback - 1);
  }
  const due: number[] = [];
  while (slot !== null && slot <= nowMs && dueAt(s.name, slot, s.jitterMs) <= nowMs) {
    due.push(slot);
    if (due.length > MAX_CATCH_UP_SLOTS) { due.shift(); missed++; }
    slot = slotAfter(cron, slot);
  }
  let chosen: number[];
  if (s.catchUp === "all") chosen = due;
  else if (s.catchUp === "latest") chosen = due.slice(-1);
  else chosen = due.filter((d) => nowMs - dueAt(s.name, d, s.jitterMs) <= ON_TIME_GRACE_MS);
  missed += due.length - chosen.length;
  let open = previousOpen;
  const fires: TickPlan["fires"] = [];
  for (const d of chosen) {
    if (open && s.overlap === "skip") { fires.push({ slotMs: d, outcome: "skipped-overlap" }); continue; }
    fires.push({ slotMs: d, outcome: "fired" });
    if (s.overlap === "skip") open = true;
  }
  return {
    fires, missed, cancelPrevious: previousOpen && s.overlap === "cancel-previous" && fires.length > 0,
    nextSlotMs: slot, nextAtMs: slot === null ? null : dueAt(s.name, slot, s.jitterMs),
  };
}

/** The key of a cron slot in the store (one row per schedule and slot). */
export function slotKey(slotMs: number): string {
  return new Date(slotMs).toISOString();
}
