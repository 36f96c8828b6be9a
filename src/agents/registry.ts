import { isAbsolute, resolve } from "node:path";
import { z } from "zod";
import type { AgentRef } from "../pool/protocol.js";
import { RateLimitRefSchema, type RateLimitRef } from "../model/flow.js";
import { BUILTIN_AGENTS } from "./builtins.js";
import type { ScriptAgentConfig } from "./scripts.js";

export type AgentKind = "builtin" | "module" | "script";

/** A JavaScript module agent: the named export of a module, run in the worker-thread pool. */
export const ModuleAgentSchema = z.strictObject({
  id: z.string().min(1).regex(/^[A-Za-z0-9_.:-]+$/, "may use only letters, digits and _ . : -"),
  /** Path of the module (relative paths resolve against the root). */
  module: z.string().min(1),
  /** Export name (default: "default"). */
  export: z.string().min(1).default("default"),
  /** A named rate limit (settings `rateLimits`) every step of this agent takes a token of, unless the step or workflow names its own. */
  rateLimit: RateLimitRefSchema.optional(),
});
export type ModuleAgentConfig = z.input<typeof ModuleAgentSchema>;

/** `<root>/agents/modules.json`. */
export const ModuleAgentsFileSchema = z.strictObject({ agents: z.array(ModuleAgentSchema) });

interface Entry { kind: AgentKind; ref: AgentRef; inputSchema?: z.ZodType; concurrency?: number; mode?: "oneshot" | "persistent"; rateLimit?: RateLimitRef }

/** Every agent this engine can run, by id. */
export class AgentRegistry {
  readonly #entries = new Map<string, Entry>();

  constructor(modules: readonly z.output<typeof ModuleAgentSchema>[], baseDir: string, scripts: readonly ScriptAgentConfig[] = []) {
    for (const [name, builtin] of BUILTIN_AGENTS) {
      this.#entries.set(name, { kind: "builtin", ref: { kind: "builtin", name }, ...(builtin.inputSchema ? { inputSchema: builtin.inputSchema } : {}) });
    }
    for (const m of modules) {
      const module = isAbsolute(m.module) ? m.module : resolve(baseDir, m.module);
      this.#entries.set(m.id, { kind: "module", ref: { kind: "module", module, exportName: m.export }, ...(m.rateLimit !== undefined ? { rateLimit: m.rateLimit } : {}) });
    }
    for (const config of scripts) {
      this.#entries.set(config.id, {
        kind: "script", ref: { kind: "script", config }, mode: config.mode,
        ...(config.concurrency !== undefined ? { concurrency: config.concurrency } : {}),
        ...(config.rateLimit !== undefined ? { rateLimit: config.rateLimit } : {}),
      });
    }
  }

  has(id: string): boolean {
    return this.#entries.has(id);
  }

  ids(): ReadonlySet<string> {
    return new Set(this.#entries.keys());
  }

  /** How a worker thread finds the agent; undefined when unknown. */
  ref(id: string): AgentRef | undefined {
    return this.#entries.get(id)?.ref;
  }

  /** The schema a built-in agent's input must satisfy, if it declares one. */
  inputSchema(id: string): z.ZodType | undefined {
    return this.#entries.get(id)?.inputSchema;
  }

  /** At most this many attempts of the agent at once on a node; undefined: no cap of its own. */
  concurrency(id: string): number | undefined {
    return this.#entries.get(id)?.concurrency;
  }

  /** The rate limit the agent's config names for its steps; undefined: none. */
  rateLimit(id: string): RateLimitRef | undefined {
    return this.#entries.get(id)?.rateLimit;
  }

  /** Every agent whose config names a rate limit. */
  rateLimited(): { id: string; rateLimit: RateLimitRef }[] {
    return [...this.#entries].flatMap(([id, e]) => (e.rateLimit !== undefined ? [{ id, rateLimit: e.rateLimit }] : []));
  }

  /** Script agents kept running between steps (hosted on the supervisor's thread). */
  persistentScripts(): ScriptAgentConfig[] {
    return [...this.#entries.values()].flatMap((e) => (e.ref.kind === "script" && e.ref.config.mode === "persistent" ? [e.ref.config] : []));
  }

  list(): { id: string; kind: AgentKind; mode?: "oneshot" | "persistent" }[] {
    return [...this.#entries].map(([id, e]) => ({ id, kind: e.kind, ...(e.mode ? { mode: e.mode } : {}) })).sort((a, b) => a.id.localeCompare(b.id));
  }
}
