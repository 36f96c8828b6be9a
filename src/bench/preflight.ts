import { InvalidInputError } from "../errors.js";
import { buildSingleTask, buildWorkflowTask } from "../model/build-task.js";
import { readJsonFile } from "../model/json-file.js";
import { loadAgents, readRootConfig, type RootConfig, type RootPaths } from "../root.js";
import { resolveWorkload, type WorkloadSpec } from "./workload.js";

/** A workload that does not validate against a root: `option` names the command-line option at fault. */
export class WorkloadError extends Error {
  readonly option: string;
  constructor(option: string, message: string) {
    super(`${option}: ${message}`);
    this.name = "WorkloadError";
    this.option = option;
  }
}

/** Reads a workflow file (JSON), or throws WorkloadError naming `--workflow`. Reads only. */
export function readWorkflowFile(file: string): Record<string, unknown> {
  let raw: unknown;
  try {
    raw = readJsonFile(file);
  } catch (error) {
    throw new WorkloadError(`--workflow ${file}`, error instanceof InvalidInputError ? error.problems.map((p) => p.message).join("; ") : (error as Error).message);
  }
  if (raw === undefined) throw new WorkloadError(`--workflow ${file}`, "no such file");
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw new WorkloadError(`--workflow ${file}`, "must be a JSON object (a workflow with steps)");
  return raw as Record<string, unknown>;
}

/**
 * Checks a workload against a root's agents and settings without writing anything: the agent
 * must be one this node serves, and a task of the workload must validate as a submission would.
 * Returns the root's configuration for the run. Throws WorkloadError.
 */
export function checkWorkload(paths: RootPaths, w: WorkloadSpec, optionName: string): RootConfig {
  const config = readRootConfig(paths);
  const { agents, retryPolicies } = loadAgents(paths, config);
  if (w.kind === "shape" && !agents.ids().has(w.agent)) {
    throw new WorkloadError(optionName, `no node serves agent "${w.agent}" (agents here: ${[...agents.ids()].sort().join(", ")})`);
  }
  const workload = resolveWorkload(w);
  const ctx = { agents, settings: config.settings, retryPolicies, source: optionName };
  try {
    if (w.kind === "shape" && w.shape === "single") {
      const step = workload.spec.steps[0]!;
      buildSingleTask({ agent: step.agent, input: step.input, ...(w.priority ? { priority: w.priority } : {}) }, ctx);
    } else {
      buildWorkflowTask(workload.spec, ctx);
    }
  } catch (error) {
    if (error instanceof InvalidInputError) {
      throw new WorkloadError(optionName, error.problems.map((p) => (p.where.startsWith(optionName) ? p.where.slice(optionName.length).replace(/^[:.\s]+/, "") : p.where) + (p.where ? ": " : "") + p.message).join("; "));
    }
    throw error;
  }
  return config;
}
