import type { Priority, RelayMesh, WorkflowSpec } from "../index.js";

export const BENCHMARK_SHAPES = ["single", "chain", "diamond", "fanout"] as const;
export type BenchmarkShape = (typeof BENCHMARK_SHAPES)[number];

/** Width of the middle layer of the `fanout` shape. */
export const FANOUT_WIDTH = 20;

/** What every task of a run is: a built-in shape of one agent's steps, or the user's own workflow. */
export type WorkloadSpec =
  | { kind: "shape"; shape: BenchmarkShape; agent: string; inputSize: number; priority?: Priority | undefined }
  | { kind: "workflow"; workflow: WorkflowSpec; priority?: Priority | undefined };

/** A workload resolved for submitting: the workflow sent for every task and its step graph. */
export interface Workload {
  /** `shape:<name>` or `workflow:<name>`, for reports. */
  label: string;
  spec: WorkflowSpec;
  /** Step ids in file order, and for each step the indexes of the steps depending on it. */
  stepIds: string[];
  dependents: number[][];
  /** Dependencies per step (by index), for readiness. */
  depCounts: number[];
  /**
   * Submits task number `i`. `name` (when given) replaces the workflow's name, to tag the task;
   * an idempotency key in the file is made unique per task so every task is a new one.
   */
  submit(mesh: RelayMesh, i: number, runId: string, name: string | undefined): Promise<string>;
}

/** Resolves a workload spec into what a run submits. */
export function resolveWorkload(w: WorkloadSpec): Workload {
  if (w.kind === "shape") {
    const spec = shapeWorkflow(w.shape, w.agent, "x".repeat(w.inputSize), w.priority);
    const step = spec.steps[0]!;
    return {
      ...graphOf(spec), label: `shape:${w.shape}`, spec,
      submit: w.shape === "single"
        ? async (mesh, _i, _runId, name) => (await mesh.submit({
          agent: step.agent, input: step.input, ...(w.priority ? { priority: w.priority } : {}), ...(name !== undefined ? { name } : {}),
        })).taskId
        : async (mesh, _i, _runId, name) => (await mesh.submitWorkflow(name !== undefined ? { ...spec, name } : spec, { source: "bench" })).taskId,
    };
  }
  const base: WorkflowSpec = { ...w.workflow, ...(w.priority ? { priority: w.priority } : {}) };
  const keyed = base.idempotencyKey !== undefined;
  return {
    ...graphOf(base), label: `workflow:${base.name ?? "unnamed"}`, spec: base,
    submit: async (mesh, i, runId, name) => {
      const spec: WorkflowSpec = { ...base, ...(name !== undefined ? { name } : {}) };
      const options = keyed ? { source: "bench", idempotencyKey: `${base.idempotencyKey}:bench-${runId}-${i}` } : { source: "bench" };
      return (await mesh.submitWorkflow(spec, options)).taskId;
    },
  };
}

function graphOf(spec: WorkflowSpec): Pick<Workload, "stepIds" | "dependents" | "depCounts"> {
  const stepIds = spec.steps.map((s) => s.id);
  const index = new Map(stepIds.map((id, i) => [id, i]));
  const dependents = stepIds.map((): number[] => []);
  const depCounts = spec.steps.map((s, i) => {
    for (const d of s.dependsOn ?? []) dependents[index.get(d)!]?.push(i);
    return (s.dependsOn ?? []).length;
  });
  return { stepIds, dependents, depCounts };
}

/** A built-in shape with every step on `agent`; `single` is one step named `main` (as `submit` makes). */
export function shapeWorkflow(shape: BenchmarkShape, agent: string, input: string, priority?: Priority): WorkflowSpec {
  const step = (id: string, dependsOn: string[] = []) => ({ id, agent, input, ...(dependsOn.length > 0 ? { dependsOn } : {}) });
  const p = priority ? { priority } : {};
  switch (shape) {
    case "single":
      return { ...p, steps: [step("main")] };
    case "chain":
      return { name: "bench-chain", ...p, steps: [step("a"), step("b", ["a"]), step("c", ["b"])] };
    case "diamond":
      return { name: "bench-diamond", ...p, steps: [step("a"), step("b", ["a"]), step("c", ["a"]), step("d", ["b", "c"])] };
    case "fanout": {
      const middle = Array.from({ length: FANOUT_WIDTH }, (_, k) => step(`m${String(k + 1).padStart(2, "0")}`, ["a"]));
      return { name: "bench-fanout", ...p, steps: [step("a"), ...middle, step("z", middle.map((m) => m.id))] };
    }
  }
}
