import { z } from "zod";
import { durationMs } from "./duration.js";

const UNITS_MS: ReadonlyMap<string, number> = new Map([
  ["ms", 1], ["s", 1_000], ["m", 60_000], ["h", 3_600_000], ["d", 86_400_000],
]);

/**
 * Parses a duration: a number of milliseconds, or a number with a unit (`500ms`, `30s`, `5m`,
 * `1h`, `2d`, also compound `1h30m`). Returns null when it is not one.
 */
export function parseDurationMs(text: string): number | null {
  const s = text.trim();
  if (/^\d+$/.test(s)) return Number(s);
  const parts = [...s.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h|d)/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join("") !== s) return null;
  return Math.round(parts.reduce((sum, p) => sum + Number(p[1]) * UNITS_MS.get(p[2]!)!, 0));
}

/** A time: epoch milliseconds, or an ISO-8601 string with a date. Returns null when it is not one. */
export function parseTimeMs(value: string | number): number | null {
  if (typeof value === "number") return Number.isSafeInteger(value) && value >= 0 ? value : null;
  const s = value.trim();
  if (/^\d+$/.test(s)) return Number(s);
  if (!/^\d{4}-\d{2}-\d{2}/.test(s)) return null;
  const ms = Date.parse(s);
  return Number.isNaN(ms) ? null : ms;
}

const DurationSchema = durationMs();
const TimeSchema = z.union([z.number(), z.string()]).refine((v) => parseTimeMs(v) !== null, "must be an ISO-8601 time or epoch milliseconds");

/** `{{input.field}}` (dotted paths allowed) inside a key; anything else is literal. */
const TEMPLATE = /\{\{\s*input((?:\.[A-Za-z0-9_$-]+)*)\s*\}\}/g;
const KeySchema = z.string().min(1, "must not be empty").max(500, "must be at most 500 characters")
  .refine((k) => !/\{\{(?!\s*input(?:\.[A-Za-z0-9_$-]+)*\s*\}\})/.test(k), "only {{input}} and {{input.field}} templates are supported");

export const CONCURRENCY_STRATEGIES = ["queue", "cancel-newest", "cancel-in-progress"] as const;
export const ConcurrencySchema = z.strictObject({
  /** Steps sharing this key share `limit` running slots across every node. */
  key: KeySchema,
  limit: z.number().int().min(1).max(100_000),
  /** queue: wait for a slot; cancel-newest: cancel the newcomer's task; cancel-in-progress: cancel the oldest holder's task (default: queue). */
  strategy: z.enum(CONCURRENCY_STRATEGIES).optional(),
});
export type ConcurrencySpec = z.infer<typeof ConcurrencySchema>;

const LimitNameSchema = z.string().min(1, "must not be empty").max(200).regex(/^[A-Za-z0-9_.:-]+$/, "may use only letters, digits and _ . : -");
export const RateLimitRefSchema = z.union([LimitNameSchema, z.strictObject({ name: LimitNameSchema, key: KeySchema.optional() })]);
export type RateLimitRef = z.infer<typeof RateLimitRefSchema>;

export const DedupeSchema = z.strictObject({
  key: KeySchema,
  windowMs: DurationSchema.refine((n) => n > 0, "must be positive"),
  /** drop: a second submission returns the first task; replace: it replaces the inputs of the first if it has not started (default: drop). */
  mode: z.enum(["drop", "replace"]).optional(),
});
export type DedupeSpec = z.infer<typeof DedupeSchema>;

/** Flow-control fields a step may carry (a workflow carries them too, as defaults for its steps). */
export const StepFlowFields = {
  /** Start no earlier than this (ISO-8601 or epoch ms). */
  notBefore: TimeSchema.optional(),
  /** Start no earlier than this long after submission. */
  delayMs: DurationSchema.optional(),
  concurrency: ConcurrencySchema.optional(),
  rateLimit: RateLimitRefSchema.optional(),
};

/** Flow-control fields only a workflow carries. */
export const WorkflowFlowFields = {
  ...StepFlowFields,
  /** Past this long after submission, what has not finished is cancelled (reason "deadline"). */
  deadlineMs: DurationSchema.refine((n) => n > 0, "must be positive").optional(),
  /** Past this time (ISO-8601 or epoch ms), what has not finished is cancelled (reason "deadline"). */
  deadline: TimeSchema.optional(),
  dedupe: DedupeSchema.optional(),
};

/** Settings entry of a named rate limit: a token bucket shared by every node of a store. */
export const RateLimitSettingSchema = z.strictObject({
  /** Tokens added per second (fractions allowed: 0.5 is one every two seconds). */
  perSecond: z.number().positive().max(1_000_000),
  /** Bucket size: how many may start at once after a quiet spell (default: 1). */
  burst: z.number().int().min(1).max(1_000_000).optional(),
});
export type RateLimitSetting = z.infer<typeof RateLimitSettingSchema>;

/**
 * Fills `{{input.a.b}}` templates from `input`. Throws a message (string) naming the missing
 * path; values that are not strings or numbers are JSON-encoded.
 */
export function resolveKey(template: string, input: unknown): string {
  return template.replace(TEMPLATE, (_m, path: string) => {
    let node: unknown = input;
    for (const part of path.split(".").slice(1)) {
      node = node !== null && typeof node === "object" && Object.hasOwn(node, part) ? (node as Record<string, unknown>)[part] : undefined;
    }
    if (node === undefined) throw new KeyTemplateError(`{{input${path}}} is not in the input`);
    return typeof node === "string" ? node : JSON.stringify(node);
  });
}

export class KeyTemplateError extends Error {}
