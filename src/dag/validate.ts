import { InvalidInputError, type Problem } from "../errors.js";
import { WorkflowSpecSchema, type WorkflowSpec } from "../model/workflow.js";
import { MAX_JSON_DEPTH, jsonBytes, nestsDeeperThan, zodProblems } from "../model/problems.js";

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
    if (nestsDeeperThan(step.input, MAX_JSON_DEPTH)) {
      problems.push({ where: at(step.id, "input"), message: `input nests deeper than ${MAX_JSON_DEPTH} levels of arrays and objects (the limit)` });
    } else {
      const bytes = jsonBytes(step.input);
      if (bytes > ctx.maxPayloadBytes) {
        problems.push({ where: at(step.id, "input"), message: `input is ${bytes} bytes, over maxPayloadBytes (${ctx.maxPayloadBytes})` });
      }
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

/**
 * Each cycle as a closed path, e.g. ["a", "b", "c", "a"] (a depends on c, c on b, b on a: run order
 * a→b→c→a): one per strongly connected component. Iterative and keyed by index, so a chain of any
 * length and any step id (`__proto__` included) are safe.
 */
export function findCyclePaths(spec: { steps: readonly { id: string; dependsOn?: string[] | undefined }[] }): string[][] {
  const index = new Map<string, number>();
  const ids: string[] = [];
  for (const step of spec.steps) if (!index.has(step.id)) { index.set(step.id, ids.length); ids.push(step.id); }
  const successors: number[][] = ids.map(() => []);
  for (const step of spec.steps) {
    const to = index.get(step.id)!;
    for (const dep of step.dependsOn ?? []) {
      const from = index.get(dep);
      if (from !== undefined && from !== to) successors[from]!.push(to);
    }
  }
  return stronglyConnected(successors).map((component) => cyclePathWithin(successors, component, ids));
}

/** Tarjan's algorithm with an explicit stack: the components of more than one node. */
function stronglyConnected(successors: readonly number[][]): number[][] {
  const n = successors.length;
  const order = new Int32Array(n).fill(-1);
  const low = new Int32Array(n);
  const next = new Int32Array(n);
  const onStack = new Uint8Array(n);
  const stack: number[] = [];
  const components: number[][] = [];
  let counter = 0;
  for (let root = 0; root < n; root++) {
    if (order[root] !== -1) continue;
    const calls = [root];
    order[root] = low[root] = counter++;
    stack.push(root);
    onStack[root] = 1;
    while (calls.length > 0) {
      const v = calls[calls.length - 1]!;
      const out = successors[v]!;
      if (next[v]! < out.length) {
        const w = out[next[v]!++]!;
        if (order[w] === -1) {
          order[w] = low[w] = counter++;
          stack.push(w);
          onStack[w] = 1;
          calls.push(w);
        } else if (onStack[w]) {
          low[v] = Math.min(low[v]!, order[w]!);
        }
        continue;
      }
      calls.pop();
      if (calls.length > 0) { const u = calls[calls.length - 1]!; low[u] = Math.min(low[u]!, low[v]!); }
      if (low[v] !== order[v]) continue;
      const component: number[] = [];
      let w: number;
      do { w = stack.pop()!; onStack[w] = 0; component.push(w); } while (w !== v);
      if (component.length > 1) components.push(component);
    }
  }
  return components;
}

/** The shortest cycle through the component's first id (in sort order), by breadth-first search inside it. */
function cyclePathWithin(successors: readonly number[][], component: number[], ids: readonly string[]): string[] {
  const members = new Set(component);
  const start = component.reduce((a, b) => (ids[a]! <= ids[b]! ? a : b));
  const parent = new Map<number, number>([[start, -1]]);
  const queue = [start];
  for (let head = 0; head < queue.length; head++) {
    const v = queue[head]!;
    for (const w of successors[v]!) {
      if (w === start) {
        const back = [ids[start]!];
        for (let at = v; at !== start; at = parent.get(at)!) back.push(ids[at]!);
        return [ids[start]!, ...back.reverse()];
      }
      if (!members.has(w) || parent.has(w)) continue;
      parent.set(w, v);
      queue.push(w);
    }
  }
  return [ids[start]!];
}
