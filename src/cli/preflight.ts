import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { InvalidInputError } from "../errors.js";
import { buildWorkflowTask, namedAgents, type SubmitOptions } from "../model/build-task.js";
import { defaultRoot, loadAgents, readRootConfig, rootPaths } from "../root.js";
import type { GlobalOptions } from "./context.js";

/** Reads a workflow file, naming the file in every error. */
export function readWorkflowFile(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(resolve(file), "utf8");
  } catch (cause) {
    throw new InvalidInputError([{ where: file, message: `cannot read: ${(cause as NodeJS.ErrnoException).code ?? (cause as Error).message}` }], { cause });
  }
  try {
    return JSON.parse(text);
  } catch (cause) {
    throw new InvalidInputError([{ where: file, message: `invalid JSON: ${(cause as Error).message}` }], { cause });
  }
}

/**
 * Validates a workflow against the root's agents and settings without creating or writing
 * anything, so bad input is rejected before the root is touched. With a shared store (`--store`),
 * agents this root lacks are left to the engine, which checks them against the other nodes'.
 */
export function preflightWorkflow(globals: GlobalOptions, raw: unknown, source: string, options: SubmitOptions): void {
  const paths = rootPaths(globals.root ?? defaultRoot());
  const config = readRootConfig(paths);
  const { agents, retryPolicies } = loadAgents(paths, config);
  const shared = (globals.store ?? process.env.RELAYMESH_STORE) ? new Set(namedAgents(raw)) : undefined;
  buildWorkflowTask(raw, { agents, settings: config.settings, retryPolicies, source, ...(shared ? { meshAgents: shared } : {}) }, options);
}
