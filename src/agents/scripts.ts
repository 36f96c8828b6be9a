import { existsSync, readFileSync, statSync } from "node:fs";
import { isAbsolute, join, resolve } from "node:path";
import { z } from "zod";
import { InvalidInputError, type Problem } from "../errors.js";
import { zodProblems } from "../model/problems.js";
import { durationMs } from "../model/duration.js";
import { RateLimitRefSchema, type RateLimitRef } from "../model/flow.js";

/**
 * One entry of `<root>/agents/scripts.json`: a program in any language, run without a shell.
 * One-shot: one process per step attempt (JSON on stdin, JSON on stdout, fd 3 control channel).
 * Persistent: `instances` long-lived processes speaking JSON lines (CONTRACT.md).
 */
export const ScriptAgentSchema = z
  .strictObject({
    id: z.string().min(1).regex(/^[A-Za-z0-9_.:-]+$/, "may use only letters, digits and _ . : -"),
    /** Program and arguments; relative paths resolve against the root, a bare name is looked up on PATH. */
    command: z.array(z.string().min(1)).min(1),
    /** Limit per step attempt (one-shot) or per request (persistent). */
    timeoutMs: durationMs(1),
    /** Added to the engine's environment. */
    env: z.record(z.string(), z.string()).optional(),
    /** At most this many attempts of this agent at once on a node (default: unlimited). */
    concurrency: z.number().int().min(1).optional(),
    /** @default "oneshot" */
    mode: z.enum(["oneshot", "persistent"]).default("oneshot"),
    /** Persistent mode only: how many processes to keep (default: 1). */
    instances: z.number().int().min(1).optional(),
    /** Working directory (relative: against the root; default: the engine's). */
    cwd: z.string().min(1).optional(),
    /** A named rate limit (settings `rateLimits`) every step of this agent takes a token of, unless the step or workflow names its own. */
    rateLimit: RateLimitRefSchema.optional(),
  })
  .superRefine((agent, ctx) => {
    if (agent.instances !== undefined && agent.mode !== "persistent") {
      ctx.addIssue({
        code: "custom",
        path: ["instances"],
        message: `agent "${agent.id}": "instances" needs "mode": "persistent" (a one-shot agent starts one process per step)`,
      });
    }
  });

/** `<root>/agents/scripts.json`. */
export const ScriptAgentsFileSchema = z.strictObject({ agents: z.array(ScriptAgentSchema) });

/** A parsed script agent, paths resolved against the root. */
export interface ScriptAgentConfig {
  id: string;
  /** `command[0]` is absolute unless it is a bare program name (PATH lookup). */
  command: string[];
  timeoutMs: number;
  env?: Record<string, string>;
  concurrency?: number;
  mode: "oneshot" | "persistent";
  /** Number of processes in persistent mode; 1 for one-shot agents. */
  instances: number;
  /** Absolute, when given. */
  cwd?: string;
  rateLimit?: RateLimitRef;
}

/**
 * Reads `<root>/agents/scripts.json`. A missing file means no script agents; invalid JSON, an
 * invalid entry or a duplicate id throws an InvalidInputError naming the file, entry and field.
 */
export function loadScriptAgents(root: string): ScriptAgentConfig[] {
  const dir = resolve(root);
  const file = join(dir, "agents", "scripts.json");
  if (!existsSync(file)) return [];
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, "utf8"));
  } catch (cause) {
    throw new InvalidInputError([{ where: file, message: `invalid JSON: ${(cause as Error).message}` }], { cause });
  }
  const parsed = ScriptAgentsFileSchema.safeParse(raw);
  if (!parsed.success) throw new InvalidInputError(zodProblems(parsed.error, file, raw), { cause: parsed.error });
  const problems: Problem[] = [];
  const seen = new Map<string, number>();
  parsed.data.agents.forEach((agent, i) => {
    const first = seen.get(agent.id);
    if (first !== undefined) {
      problems.push({ where: `${file}: agents[${i}] (id "${agent.id}").id`, message: `duplicate id, already used by agents[${first}]` });
    } else {
      seen.set(agent.id, i);
    }
  });
  if (problems.length > 0) throw new InvalidInputError(problems);
  return parsed.data.agents.map((agent) => resolveAgent(agent, dir));
}

function resolveAgent(agent: z.output<typeof ScriptAgentSchema>, dir: string): ScriptAgentConfig {
  const [program, ...args] = agent.command as [string, ...string[]];
  const config: ScriptAgentConfig = {
    id: agent.id,
    command: [resolveProgram(program, dir), ...args.map((arg) => resolveArgument(arg, dir))],
    timeoutMs: agent.timeoutMs,
    mode: agent.mode,
    instances: agent.instances ?? 1,
  };
  if (agent.env !== undefined) config.env = agent.env;
  if (agent.concurrency !== undefined) config.concurrency = agent.concurrency;
  if (agent.cwd !== undefined) config.cwd = resolve(dir, agent.cwd);
  if (agent.rateLimit !== undefined) config.rateLimit = agent.rateLimit;
  return config;
}

/** A path (it has a slash) resolves against the root; a bare name stays for the PATH lookup. */
function resolveProgram(program: string, dir: string): string {
  if (isAbsolute(program) || !program.includes("/")) return program;
  return resolve(dir, program);
}

/** An argument that looks like a path to an existing file under the root becomes absolute; flags and words stay. */
function resolveArgument(arg: string, dir: string): string {
  if (isAbsolute(arg) || arg.startsWith("-") || !/\/|\.[A-Za-z0-9]+$/.test(arg)) return arg;
  const candidate = resolve(dir, arg);
  try {
    return statSync(candidate).isFile() ? candidate : arg;
  } catch {
    return arg;
  }
}
