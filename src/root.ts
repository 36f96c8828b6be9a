import { join, resolve } from "node:path";
import { z } from "zod";
import { InvalidInputError, InvalidOptionsError } from "./errors.js";
import { AgentRegistry, ModuleAgentsFileSchema, type ModuleAgentSchema } from "./agents/registry.js";
import { loadRetryPolicies } from "./agents/retry-policies.js";
import { loadScriptAgents, type ScriptAgentConfig } from "./agents/scripts.js";
import type { RetryOverride } from "./model/workflow.js";
import { SettingsSchema, type Settings } from "./model/settings.js";
import { knownRateLimits, rateLimitSetting } from "./model/resolve-flow.js";
import { zodProblems } from "./model/problems.js";
import { readJsonFile } from "./model/json-file.js";
import { ensureDir } from "./ops/dirs.js";

/** Paths inside a root (CONTRACT.md "Files in a root"). */
export function rootPaths(root: string) {
  const dir = resolve(root);
  return {
    dir,
    db: join(dir, "relaymesh.db"),
    settings: join(dir, "relaymesh-settings.json"),
    agentsDir: join(dir, "agents"),
    modules: join(dir, "agents", "modules.json"),
    retryPolicies: join(dir, "agents", "retry-policies.json"),
    auditDir: join(dir, "audit"),
    reportsDir: join(dir, "reports"),
  };
}
export type RootPaths = ReturnType<typeof rootPaths>;

export function defaultRoot(env: NodeJS.ProcessEnv = process.env): string {
  return env.RELAYMESH_ROOT && env.RELAYMESH_ROOT.length > 0 ? env.RELAYMESH_ROOT : "./relaymesh-data";
}

/** Creates the root's folders when missing. Idempotent. */
export function ensureRoot(paths: RootPaths): void {
  for (const dir of [paths.dir, paths.agentsDir, paths.auditDir, paths.reportsDir]) ensureDir(dir, "root folder");
}

/** Configuration read from a root's files; reading writes nothing. */
export interface RootConfig {
  settings: Settings;
  modules: z.output<typeof ModuleAgentSchema>[];
  scripts: ScriptAgentConfig[];
}

/**
 * Reads and validates the settings file (layered with `overrides`) and agents/modules.json.
 * A missing file means defaults; an invalid one throws naming the file and field.
 */
export function readRootConfig(paths: RootPaths, overrides: Record<string, unknown> = {}): RootConfig {
  const fileSettings = readJsonFile(paths.settings) ?? {};
  if (typeof fileSettings !== "object" || fileSettings === null || Array.isArray(fileSettings)) {
    throw new InvalidOptionsError(`${paths.settings}: must be a JSON object`);
  }
  const settings = SettingsSchema.safeParse({ ...fileSettings, ...overrides });
  if (!settings.success) {
    const problems = zodProblems(settings.error, paths.settings);
    throw new InvalidOptionsError(problems.map((p) => `${p.where}: ${p.message}`).join("; "), { cause: settings.error, details: problems });
  }
  const modulesRaw = readJsonFile(paths.modules);
  let modules: RootConfig["modules"] = [];
  if (modulesRaw !== undefined) {
    const parsed = ModuleAgentsFileSchema.safeParse(modulesRaw);
    if (!parsed.success) throw new InvalidInputError(zodProblems(parsed.error, paths.modules, modulesRaw));
    modules = parsed.data.agents;
  }
  return { settings: settings.data, modules, scripts: loadScriptAgents(paths.dir) };
}

/**
 * The agents of a root (and of the embedding code), with their retry policies checked against
 * them and the rate limits their configs name checked against the settings.
 */
export function loadAgents(paths: RootPaths, config: RootConfig, extraModules: RootConfig["modules"] = []): { agents: AgentRegistry; retryPolicies: Map<string, RetryOverride> } {
  const agents = new AgentRegistry([...config.modules, ...extraModules], paths.dir, config.scripts);
  const unknown = agents.rateLimited().filter((a) => !rateLimitSetting(config.settings, typeof a.rateLimit === "string" ? a.rateLimit : a.rateLimit.name));
  if (unknown.length > 0) {
    const file = (id: string) => (config.scripts.some((s) => s.id === id) ? join(paths.agentsDir, "scripts.json")
      : config.modules.some((m) => m.id === id) ? paths.modules : "options.agents");
    throw new InvalidInputError(unknown.map(({ id, rateLimit }) => ({
      where: `${file(id)}: agent "${id}".rateLimit`,
      message: `unknown rate limit "${typeof rateLimit === "string" ? rateLimit : rateLimit.name}" (${knownRateLimits(config.settings)})`,
    })));
  }
  return { agents, retryPolicies: loadRetryPolicies(paths.retryPolicies, agents.ids()) };
}
