import { z } from "zod";
import { InvalidInputError, type Problem } from "../errors.js";
import { durationMs } from "../model/duration.js";
import { zodProblems } from "../model/problems.js";
import type { ScheduleRecord } from "../store/types.js";
import { cronOf } from "./plan.js";

const Duration = durationMs();

/** A schedule as `schedule add` and `mesh.addSchedule()` take it. */
export const ScheduleInputSchema = z.strictObject({
  /** Unique name; adding an existing name replaces its definition. */
  name: z.string().min(1, "must not be empty").max(200).regex(/^[A-Za-z0-9_.:-]+$/, "may use only letters, digits and _ . : -"),
  /** Cron expression, 5 fields (minute precision) or 6 (seconds first), as croner reads it. */
  cron: z.string().min(1, "must not be empty").max(200),
  /** The workflow each slot submits (the workflow file of CONTRACT.md). */
  workflow: z.unknown(),
  /** IANA time zone the expression is read in, e.g. "Europe/Paris" (default: UTC). */
  timezone: z.string().min(1).max(100).optional(),
  /** A slot due while the previous slot's task is open: skip it, allow both, or cancel the previous (default: skip). */
  overlap: z.enum(["skip", "allow", "cancel-previous"]).default("skip"),
  /** Slots missed while no node ran: none, the latest, or all within the window (default: none). */
  catchUp: z.enum(["none", "latest", "all"]).default("none"),
  /** Missed slots older than this are not caught up (default: 7 days). */
  catchUpWindowMs: Duration.refine((n) => n > 0, "must be positive").optional(),
  /** Each slot fires up to this much later, a fixed amount per slot (default: 0). */
  jitterMs: Duration.default(0),
  /** Added paused (default: false). */
  paused: z.boolean().default(false),
});
export type ScheduleInput = z.input<typeof ScheduleInputSchema>;
export type ParsedSchedule = z.output<typeof ScheduleInputSchema>;

/** Validates a schedule (cron expression and time zone included; the workflow is checked by the caller). */
export function parseSchedule(raw: unknown, source: string): ParsedSchedule {
  const parsed = ScheduleInputSchema.safeParse(raw);
  const problems: Problem[] = parsed.success ? [] : zodProblems(parsed.error, source, raw);
  if (parsed.success) {
    const s = parsed.data;
    if (s.timezone !== undefined && !isTimeZone(s.timezone)) {
      problems.push({ where: `${source}: timezone`, message: `unknown time zone "${s.timezone}" (use an IANA name such as Europe/Paris)` });
    } else {
      try {
        cronOf(s.cron, s.timezone ?? null);
      } catch (error) {
        problems.push({ where: `${source}: cron`, message: `invalid cron expression "${s.cron}": ${(error as Error).message}` });
      }
    }
  }
  if (problems.length > 0 || !parsed.success) throw new InvalidInputError(problems);
  return parsed.data;
}

function isTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat("en", { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

/** A schedule as the CLI, the console and the API print it (CONTRACT.md `schedule`). */
export function scheduleView(s: ScheduleRecord) {
  return {
    name: s.name, cron: s.cron, timezone: s.timezone, overlap: s.overlap, catchUp: s.catchUp, catchUpWindowMs: s.catchUpWindowMs,
    jitterMs: s.jitterMs, paused: s.paused, nextAtMs: s.paused ? null : s.nextAtMs, nextSlotMs: s.paused ? null : s.nextSlotMs,
    lastSlotMs: s.lastSlotMs, lastTaskId: s.lastTaskId, firedCount: s.firedCount, skippedCount: s.skippedCount,
    createdAtMs: s.createdAtMs, updatedAtMs: s.updatedAtMs, workflow: s.spec,
  };
}
