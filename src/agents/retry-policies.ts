import { existsSync } from "node:fs";
import { z } from "zod";
import { InvalidInputError, type Problem } from "../errors.js";
import { zodProblems } from "../model/problems.js";
import { readJsonFile } from "../model/json-file.js";
import type { RetryOverride } from "../model/workflow.js";
import { durationMs } from "../model/duration.js";

/** `<root>/agents/retry-policies.json`: per-agent retry policies (a step's own `retry` still wins). */
export const RetryPoliciesFileSchema = z.strictObject({
  agents: z.array(z.strictObject({
    id: z.string().min(1),
    maxAttempts: z.number().int().min(1).max(1000).optional(),
    baseBackoffMs: durationMs().optional(),
    maxBackoffMs: durationMs().optional(),
  }).superRefine((p, ctx) => {
    if (p.baseBackoffMs !== undefined && p.maxBackoffMs !== undefined && p.maxBackoffMs < p.baseBackoffMs) {
      ctx.addIssue({ code: "custom", path: ["maxBackoffMs"], message: `must be at least baseBackoffMs (${p.baseBackoffMs})` });
    }
  })),
});

/**
 * Reads the policies; a missing file means none. Invalid content, a duplicate id or an id that
 * names no known agent throws an InvalidInputError naming the file and entry.
 */
export function loadRetryPolicies(path: string, knownAgents: ReadonlySet<string>): Map<string, RetryOverride> {
  if (!existsSync(path)) return new Map();
  const raw = readJsonFile(path);
  const parsed = RetryPoliciesFileSchema.safeParse(raw);
  if (!parsed.success) throw new InvalidInputError(zodProblems(parsed.error, path, raw));
  const problems: Problem[] = [];
  const policies = new Map<string, RetryOverride>();
  parsed.data.agents.forEach(({ id, ...policy }, i) => {
    const where = `${path}: agents[${i}] (id "${id}")`;
    if (!knownAgents.has(id)) problems.push({ where: `${where}.id`, message: `unknown agent "${id}" (known: ${[...knownAgents].sort().join(", ")})` });
    if (policies.has(id)) problems.push({ where: `${where}.id`, message: `duplicate policy for agent "${id}"` });
    policies.set(id, policy);
  });
  if (problems.length > 0) throw new InvalidInputError(problems);
  return policies;
}
