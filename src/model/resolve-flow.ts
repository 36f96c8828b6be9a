import type { Problem } from "../errors.js";
import type { NewStep, NewTask } from "../store/types.js";
import { KeyTemplateError, parseTimeMs, resolveKey, type RateLimitRef } from "./flow.js";
import type { Settings } from "./settings.js";
import type { WorkflowSpec } from "./workflow.js";

type StepFlow = Pick<NewStep, "notBeforeMs" | "concurrency" | "rateLimit">;

export interface ResolvedFlow {
  deadlineAtMs: number | null;
  dedupe: NewTask["dedupe"];
  /** One per step of the spec, in order. */
  steps: StepFlow[];
}

/**
 * Resolves a workflow's flow-control fields into absolute times, keys and buckets. Workflow
 * fields are defaults for its steps; a step with no rate limit of its own or from its workflow
 * takes the one its agent's config names (`agentRateLimit`). `{{input.…}}` templates read the
 * step's own input on a step or agent, and the first step's input on the workflow. Problems are
 * appended to `problems`.
 */
export function resolveFlow(
  spec: WorkflowSpec,
  ctx: { settings: Settings; source: string; nowMs: number; agentRateLimit?: ((agent: string) => RateLimitRef | undefined) | undefined },
  options: { delayMs?: number | undefined; notBefore?: string | number | undefined },
  problems: Problem[],
): ResolvedFlow {
  const now = ctx.nowMs;
  const where = (field: string, stepId?: string) => `${ctx.source}: ${stepId === undefined ? "" : `step "${stepId}".`}${field}`;
  const key = (template: string, input: unknown, field: string, stepId?: string): string => {
    try {
      return resolveKey(template, input);
    } catch (error) {
      if (!(error instanceof KeyTemplateError)) throw error;
      problems.push({ where: where(field, stepId), message: error.message });
      return template;
    }
  };
  const startAt = (o: { notBefore?: string | number | undefined; delayMs?: number | undefined }, stepId?: string): number | null => {
    if (o.notBefore !== undefined && o.delayMs !== undefined) {
      problems.push({ where: where("notBefore", stepId), message: "give notBefore or delayMs, not both" });
    }
    if (o.notBefore !== undefined) return parseTimeMs(o.notBefore);
    return o.delayMs !== undefined ? now + o.delayMs : null;
  };
  const rate = (ref: RateLimitRef, input: unknown, stepId?: string, agent?: string): StepFlow["rateLimit"] => {
    const name = typeof ref === "string" ? ref : ref.name;
    const setting = rateLimitSetting(ctx.settings, name);
    if (!setting) {
      const by = agent === undefined ? "" : ` named by agent "${agent}"'s config`;
      problems.push({ where: where("rateLimit", stepId), message: `unknown rate limit "${name}"${by} (${knownRateLimits(ctx.settings)})` });
      return null;
    }
    const k = typeof ref === "string" || ref.key === undefined ? null : key(ref.key, input, "rateLimit.key", stepId);
    return { name, bucket: k === null ? name : `${name}\u001f${k}`, perSecond: setting.perSecond, burst: setting.burst ?? 1 };
  };

  const agentRate = (agent: string, input: unknown, stepId: string): StepFlow["rateLimit"] => {
    const ref = ctx.agentRateLimit?.(agent);
    return ref === undefined ? null : rate(ref, input, stepId, agent);
  };

  const given = options.delayMs !== undefined || options.notBefore !== undefined;
  const taskStart = given ? startAt(options) : startAt(spec);
  const firstInput = spec.steps[0]?.input;
  let deadlineAtMs: number | null = null;
  if (spec.deadline !== undefined && spec.deadlineMs !== undefined) problems.push({ where: where("deadline"), message: "give deadline or deadlineMs, not both" });
  if (spec.deadline !== undefined) deadlineAtMs = parseTimeMs(spec.deadline);
  else if (spec.deadlineMs !== undefined) deadlineAtMs = now + spec.deadlineMs;
  if (deadlineAtMs !== null && taskStart !== null && deadlineAtMs <= taskStart) {
    problems.push({ where: where(spec.deadline !== undefined ? "deadline" : "deadlineMs"), message: "the deadline falls before the workflow may start (notBefore/delayMs)" });
  }
  const wfConcurrency = spec.concurrency ? { ...spec.concurrency, key: key(spec.concurrency.key, firstInput, "concurrency.key") } : undefined;
  const wfRate = spec.rateLimit !== undefined ? rate(spec.rateLimit, firstInput) : null;
  const dedupe = spec.dedupe
    ? { key: key(spec.dedupe.key, firstInput, "dedupe.key"), windowMs: spec.dedupe.windowMs, mode: spec.dedupe.mode ?? "drop" as const }
    : null;

  const steps = spec.steps.map((step): StepFlow => {
    const own = startAt(step, step.id);
    const notBeforeMs = own === null ? taskStart : taskStart === null ? own : Math.max(own, taskStart);
    const c = step.concurrency ? { ...step.concurrency, key: key(step.concurrency.key, step.input, "concurrency.key", step.id) } : wfConcurrency;
    return {
      notBeforeMs: notBeforeMs !== null && notBeforeMs > now ? notBeforeMs : null,
      concurrency: c ? { key: c.key, limit: c.limit, strategy: c.strategy ?? "queue" } : null,
      rateLimit: step.rateLimit !== undefined ? rate(step.rateLimit, step.input, step.id) : spec.rateLimit !== undefined ? wfRate : agentRate(step.agent, step.input, step.id),
    };
  });
  return { deadlineAtMs, dedupe, steps };
}

/** The settings of a named rate limit; undefined when there is none (never an inherited property). */
export function rateLimitSetting(settings: Settings, name: string): Settings["rateLimits"][string] | undefined {
  return Object.hasOwn(settings.rateLimits, name) ? settings.rateLimits[name] : undefined;
}

/** "settings rateLimits has a, b" (or "none"), for messages about an unknown name. */
export function knownRateLimits(settings: Settings): string {
  const known = Object.keys(settings.rateLimits).sort();
  return `settings rateLimits has ${known.length ? known.join(", ") : "none"}`;
}
