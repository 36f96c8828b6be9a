import type { z } from "zod";
import type { Problem } from "../errors.js";

/**
 * Turns zod issues into located problems: `flow.json: steps[1] (id "b").timeoutMs: …`.
 * `source` names the file or argument; `label` may name array elements by their id.
 */
export function zodProblems(error: z.ZodError, source: string, data?: unknown): Problem[] {
  return error.issues.map((issue) => {
    const path = describePath(issue.path, data);
    const where = path ? `${source}: ${path}` : source;
    if (issue.code === "unrecognized_keys") {
      return { where, message: `unknown field${issue.keys.length > 1 ? "s" : ""} ${issue.keys.map((k) => `"${k}"`).join(", ")}` };
    }
    return { where, message: issue.message };
  });
}

function describePath(path: readonly PropertyKey[], data: unknown): string {
  let out = "";
  let node: unknown = data;
  for (const key of path) {
    if (typeof key === "number") {
      out += `[${key}]`;
      node = Array.isArray(node) ? node[key] : undefined;
      const id = node && typeof node === "object" ? (node as { id?: unknown }).id : undefined;
      if (typeof id === "string") out += ` (id "${id}")`;
    } else {
      out += out ? `.${String(key)}` : String(key);
      node = node && typeof node === "object" ? (node as Record<PropertyKey, unknown>)[key] : undefined;
    }
  }
  return out;
}

/** Byte length of a value's JSON text (undefined counts as nothing). */
export function jsonBytes(value: unknown): number {
  return value === undefined ? 0 : Buffer.byteLength(JSON.stringify(value) ?? "");
}

/** Deepest nesting of arrays and objects accepted in a step input or a checkpoint value. */
export const MAX_JSON_DEPTH = 1_000;

/** True when `value` nests arrays and objects deeper than `max` levels. Iterative, so any depth is safe to check. */
export function nestsDeeperThan(value: unknown, max: number): boolean {
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!;
    if (typeof v !== "object" || v === null) continue;
    if (depth + 1 > max) return true;
    for (const child of Array.isArray(v) ? v : Object.values(v)) {
      if (typeof child === "object" && child !== null) stack.push([child, depth + 1]);
    }
  }
  return false;
}
