import { Graph, alg } from "@dagrejs/graphlib";
import { InvalidInputError, type Problem } from "../errors.js";
import { WorkflowSpecSchema, type WorkflowSpec } from "../model/workflow.js";
import { jsonBytes, zodProblems } from "../model/problems.js";

export interface ValidationContext {
  /** Names the input in messages: a file path or "submit". */
  source: string;
  /** Agents that may be named by steps. */
  knownAgents: ReadonlySet<string>;
  maxPayloadBytes: number;
  /** The input schema an agent declares, if any (checked here, before anything is written). */
  inputSchema?: (agent: string) => { safeParse(x: unknown): { success: boolean; error?: { issues: { message: string; path: PropertyKey[] }[] } } } | undefined;
}

/**
 * Parses and checks a workflow: schema, duplicate ids, unknown dependencies, cycles (with their
 * path), unknown agents, payload sizes. Throws one InvalidInputError listing every problem.
 */
export function validateWorkflow(raw: unknown, ctx: ValidationContext): WorkflowSpec {
  const parsed = WorkflowSpecSchema.safeParse(raw);
  // Structural checks run on whatever steps look usable, so one pass reports every problem.
  const problems: Problem[] = parsed.success ? [] : zodProblems(parsed.error, ctx.source, raw);
  problems.push(...checkSteps(parsed.success ? parsed.data.steps : lenientSteps(raw), ctx));
  if (problems.length > 0 || !parsed.success) throw new InvalidInputError(problems);
  return parsed.data;
}

type CheckedStep = Pick<WorkflowSpec["steps"][number], "id" | "agent" | "input" | "dependsOn" | "retry">;

/** Steps of an input that failed the schema, keeping those with a string id and agent. */
function lenientSteps(raw: unknown): CheckedStep[] {
  const steps = (raw as { steps?: unknown } | null)?.steps;
  if (!Array.isArray(steps)) return [];
  return steps.flatMap((step: unknown) => {
    const s = step as Record<string, unknown> | null;
    if (!s || typeof s.id !== "string" || typeof s.agent !== "string") return [];
    const dependsOn = Array.isArray(s.dependsOn) ? s.dependsOn.filter((d): d is string => typeof d === "string") : [];
    return [{ id: s.id, agent: s.agent, input: s.input, dependsOn }];
  });
}

function checkSteps(steps: CheckedStep[], ctx: ValidationContext): Problem[] {
  const problems: Problem[] = [];
  const at = (stepId: string, field?: string) => `${ctx.source}: step "${stepId}"${field ? `.${field}` : ""}`;
  const ids = new Set<string>();
  for (const step of steps) {
    if (ids.has(step.id)) problems.push({ where: at(step.id, "id"), message: `duplicate step id "${step.id}"` });
    ids.add(step.id);
  }
  for (const step of steps) {
    const seen = new Set<string>();
    for (const dep of step.dependsOn ?? []) {
      if (dep === step.id) problems.push({ where: at(step.id, "dependsOn"), message: "a step cannot depend on itself" });
      else if (!ids.has(dep)) problems.push({ where: at(step.id, "dependsOn"), message: `unknown dependency "${dep}"` });
      if (seen.has(dep)) problems.push({ where: at(step.id, "dependsOn"), message: `dependency "${dep}" is listed twice` });
      seen.add(dep);
    }
    if (!ctx.knownAgents.has(step.agent)) {
      problems.push({ where: at(step.id, "agent"), message: `unknown agent "${step.agent}" (known: ${[...ctx.knownAgents].sort().join(", ")})` });
    }
    const schema = ctx.knownAgents.has(step.agent) ? ctx.inputSchema?.(step.agent) : undefined;
    const checked = schema?.safeParse(step.input);
    for (const issue of checked && !checked.success ? checked.error?.issues ?? [] : []) {
      const path = issue.path.length > 0 ? `input.${issue.path.map(String).join(".")}` : "input";
      problems.push({ where: at(step.id, path), message: `${issue.message} (agent "${step.agent}")` });
    }
    const bytes = jsonBytes(step.input);
    if (bytes > ctx.maxPayloadBytes) {
      problems.push({ where: at(step.id, "input"), message: `input is ${bytes} bytes, over maxPayloadBytes (${ctx.maxPayloadBytes})` });
    }
    const r = step.retry;
    if (r?.baseBackoffMs !== undefined && r.maxBackoffMs !== undefined && r.maxBackoffMs < r.baseBackoffMs) {
      problems.push({ where: at(step.id, "retry.maxBackoffMs"), message: `must be at least retry.baseBackoffMs (${r.baseBackoffMs})` });
    }
  }
  for (const cycle of findCyclePaths({ steps })) {
    problems.push({ where: at(cycle[0]!, "dependsOn"), message: `dependency cycle: ${cycle.join(" -> ")}` });
  }
  return problems;
}

/** Each cycle as a closed path, e.g. ["a", "b", "c", "a"] (a depends on c, c on b, b on a: run order a→b→c→a). */
export function findCyclePaths(spec: { steps: readonly { id: string; dependsOn?: string[] | undefined }[] }): string[][] {
  const g = new Graph({ directed: true });
  for (const step of spec.steps) g.setNode(step.id);
  for (const step of spec.steps) {
    for (const dep of step.dependsOn ?? []) if (g.hasNode(dep) && dep !== step.id) g.setEdge(dep, step.id);
  }
  return alg.findCycles(g).map((component: string[]) => cyclePathWithin(g, new Set(component)));
}

function cyclePathWithin(g: Graph, component: Set<string>): string[] {
  const start = [...component].sort()[0]!;
  const path: string[] = [start];
  const visited = new Set<string>([start]);
  const walk = (node: string): boolean => {
    for (const next of (g.successors(node) as string[] | undefined) ?? []) {
      if (!component.has(next)) continue;
      if (next === start) { path.push(start); return true; }
      if (visited.has(next)) continue;
      visited.add(next);
      path.push(next);
      if (walk(next)) return true;
      path.pop();
    }
    return false;
  };
  walk(start);
  return path;
}
