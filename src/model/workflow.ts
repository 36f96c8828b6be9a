import { z } from "zod";
import { durationMs } from "./duration.js";
import { StepFlowFields, WorkflowFlowFields } from "./flow.js";

/** Priorities, highest first. Stored as integers (high = 2, normal = 1, low = 0). */
export const PRIORITIES = ["high", "normal", "low"] as const;
export const PrioritySchema = z.enum(PRIORITIES);
export type Priority = z.infer<typeof PrioritySchema>;

export const RetrySchema = z.strictObject({
  /** Total attempts, the first included. */
  maxAttempts: z.number().int().min(1).max(1000).optional(),
  baseBackoffMs: durationMs().optional(),
  maxBackoffMs: durationMs().optional(),
});
export type RetryOverride = z.infer<typeof RetrySchema>;

const StepIdSchema = z
  .string()
  .min(1, "must not be empty")
  .max(200, "must be at most 200 characters")
  .regex(/^[A-Za-z0-9_.:-]+$/, "may use only letters, digits and _ . : -");

export const StepSpecSchema = z.strictObject({
  id: StepIdSchema,
  agent: z.string().min(1, "must not be empty"),
  /** Any JSON value; the agent receives it as `input`. */
  input: z.unknown().optional(),
  priority: PrioritySchema.optional(),
  dependsOn: z.array(z.string()).optional(),
  retry: RetrySchema.optional(),
  timeoutMs: durationMs(1).optional(),
  ...StepFlowFields,
});
export type StepSpec = z.infer<typeof StepSpecSchema>;

/** The workflow file of CONTRACT.md. */
export const WorkflowSpecSchema = z.strictObject({
  name: z.string().optional(),
  idempotencyKey: z.string().min(1).max(500).optional(),
  priority: PrioritySchema.optional(),
  failFast: z.boolean().optional(),
  steps: z.array(StepSpecSchema).min(1, "a workflow needs at least one step"),
  ...WorkflowFlowFields,
});
export type WorkflowSpec = z.infer<typeof WorkflowSpecSchema>;

/** A single-step task, as `submit` and `mesh.submit()` take it. */
export const SingleTaskSpecSchema = z.strictObject({
  agent: z.string().min(1, "must not be empty"),
  input: z.unknown().optional(),
  priority: PrioritySchema.optional(),
  idempotencyKey: z.string().min(1).max(500).optional(),
  retry: RetrySchema.optional(),
  timeoutMs: durationMs(1).optional(),
  name: z.string().optional(),
  ...WorkflowFlowFields,
});
export type SingleTaskSpec = z.infer<typeof SingleTaskSpecSchema>;

export function priorityToInt(p: Priority): number {
  return p === "high" ? 2 : p === "normal" ? 1 : 0;
}

export function priorityFromInt(n: number): Priority {
  return n >= 2 ? "high" : n === 1 ? "normal" : "low";
}

/** A W3C traceparent: version-traceid-parentid-flags. */
export const TraceparentSchema = z
  .string()
  .regex(/^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/, "must be a W3C traceparent (00-<32 hex>-<16 hex>-<2 hex>)")
  .refine((s) => !/^..-0{32}-/.test(s) && !/-0{16}-..$/.test(s), "must not use an all-zero trace or span id");
