import { newTimeOrderedId, newTraceId } from "../observe/ids.js";
import { InvalidInputError } from "../errors.js";
import type { AgentRegistry } from "../agents/registry.js";
import { validateWorkflow } from "../dag/validate.js";
import type { NewTask } from "../store/types.js";
import type { Settings } from "./settings.js";
import { SingleTaskSpecSchema, TraceparentSchema, priorityToInt, type RetryOverride, type WorkflowSpec } from "./workflow.js";
import { zodProblems } from "./problems.js";
import { resolveFlow } from "./resolve-flow.js";

export interface BuildContext {
  agents: AgentRegistry;
  settings: Settings;
  /** Per-agent retry policies (`agents/retry-policies.json`). */
  retryPolicies?: ReadonlyMap<string, RetryOverride>;
  /** Names the input in error messages (a file path, "submit"). */
  source: string;
  /** The submission time that `delayMs` and `deadlineMs` count from (default: now). */
  nowMs?: number;
  /** Agents other nodes of the store serve: a step may name one this node does not have. */
  meshAgents?: ReadonlySet<string>;
}

/** The agent names a raw submission mentions (any shape; validation comes later). */
export function namedAgents(raw: unknown): string[] {
  if (typeof raw !== "object" || raw === null) return [];
  const r = raw as { agent?: unknown; steps?: unknown };
  const steps = Array.isArray(r.steps) ? r.steps as unknown[] : [r];
  return steps.flatMap((s) => (typeof s === "object" && s !== null && typeof (s as { agent?: unknown }).agent === "string" ? [(s as { agent: string }).agent] : []));
}

export interface SubmitOptions {
  /** Overrides the spec's own key. */
  idempotencyKey?: string | undefined;
  /** A W3C traceparent to continue: its trace id reaches every step. */
  traceparent?: string | undefined;
  /** Start no earlier than this long after submission (overrides the spec's `delayMs`/`notBefore`). */
  delayMs?: number | undefined;
  /** Start no earlier than this time, ISO-8601 or epoch ms (overrides the spec's `delayMs`/`notBefore`). */
  notBefore?: string | number | undefined;
}

/** Step id of the one step of a task made by `submit`. */
export const SINGLE_STEP_ID = "main";

/** Validates a workflow spec and resolves it into the rows to insert. Throws InvalidInputError. */
export function buildWorkflowTask(raw: unknown, ctx: BuildContext, options: SubmitOptions = {}): NewTask {
  const problems = [];
  let trace: { traceId: string; parentSpanId: string | null } = { traceId: newTraceId(), parentSpanId: null };
  if (options.traceparent !== undefined) {
    const tp = TraceparentSchema.safeParse(options.traceparent);
    if (tp.success) trace = { traceId: tp.data.split("-")[1]!, parentSpanId: tp.data.split("-")[2]! };
    else problems.push(...zodProblems(tp.error, "traceparent"));
  }
  let spec: WorkflowSpec;
  try {
    spec = validateWorkflow(raw, {
      source: ctx.source, knownAgents: ctx.meshAgents ? new Set([...ctx.agents.ids(), ...ctx.meshAgents]) : ctx.agents.ids(), maxPayloadBytes: ctx.settings.maxPayloadBytes,
      inputSchema: (agent) => ctx.agents.inputSchema(agent),
    });
  } catch (error) {
    if (error instanceof InvalidInputError) throw new InvalidInputError([...problems, ...error.problems]);
    throw error;
  }
  const flow = resolveFlow(spec, { ...ctx, nowMs: ctx.nowMs ?? Date.now(), agentRateLimit: (agent) => ctx.agents.rateLimit(agent) }, options, problems);
  if (problems.length > 0) throw new InvalidInputError(problems);
  const taskPriority = spec.priority ?? "normal";
  const s = ctx.settings;
  return {
    taskId: newTimeOrderedId(),
    name: spec.name ?? null,
    priority: priorityToInt(taskPriority),
    idempotencyKey: options.idempotencyKey ?? spec.idempotencyKey ?? null,
    failFast: spec.failFast ?? false,
    traceId: trace.traceId,
    parentSpanId: trace.parentSpanId,
    deadlineAtMs: flow.deadlineAtMs,
    dedupe: flow.dedupe,
    steps: spec.steps.map((step, i) => {
      // Precedence, field by field: the step's retry, then the agent's policy, then the settings.
      const policy = ctx.retryPolicies?.get(step.agent);
      const base = step.retry?.baseBackoffMs ?? policy?.baseBackoffMs ?? s.baseBackoffMs;
      return {
        stepId: step.id,
        agent: step.agent,
        inputJson: JSON.stringify(step.input === undefined ? null : step.input),
        priority: priorityToInt(step.priority ?? taskPriority),
        dependsOn: step.dependsOn ?? [],
        maxAttempts: step.retry?.maxAttempts ?? policy?.maxAttempts ?? s.maxAttempts,
        baseBackoffMs: base,
        maxBackoffMs: Math.max(step.retry?.maxBackoffMs ?? policy?.maxBackoffMs ?? s.maxBackoffMs, base),
        timeoutMs: step.timeoutMs ?? null,
        ...flow.steps[i]!,
      };
    }),
  };
}

/** Validates a one-step task (`submit`) and resolves it like a workflow of one step named "main". */
export function buildSingleTask(raw: unknown, ctx: BuildContext, options: SubmitOptions = {}): NewTask {
  const parsed = SingleTaskSpecSchema.safeParse(raw);
  if (!parsed.success) throw new InvalidInputError(zodProblems(parsed.error, ctx.source, raw));
  const { agent, input, priority, idempotencyKey, retry, timeoutMs, name, ...flowFields } = parsed.data;
  const workflow = {
    ...flowFields,
    ...(name !== undefined ? { name } : {}),
    ...(priority !== undefined ? { priority } : {}),
    ...(idempotencyKey !== undefined ? { idempotencyKey } : {}),
    steps: [{
      id: SINGLE_STEP_ID, agent, input,
      ...(retry !== undefined ? { retry } : {}),
      ...(timeoutMs !== undefined ? { timeoutMs } : {}),
    }],
  };
  return buildWorkflowTask(workflow, ctx, options);
}
