import { z } from "zod";
import type { Piscina } from "piscina";
import { ModuleAgentSchema } from "./agents/registry.js";
import { durationMs } from "./model/duration.js";
import { InvalidOptionsError } from "./errors.js";

/** Options of `RelayMesh.open()`. */
export const EngineOptionsSchema = z.strictObject({
  /** Folder holding the store, settings, agents and audit log (default: $RELAYMESH_ROOT, else "./relaymesh-data"). */
  root: z.string().min(1).optional(),
  /** Store URL: omitted for SQLite in the root; "postgres://…" for PostgreSQL (default: $RELAYMESH_STORE). */
  store: z.string().min(1).optional(),
  /** Step attempts running at once in this process (default: 8). */
  concurrency: z.number().int().min(1).max(10_000).default(8),
  /**
   * Steps claimed ahead of free slots: leased, heartbeated and released on close like running
   * ones, they start as slots free up. Larger batches per commit raise throughput under load;
   * 0 claims only for free slots.
   * @default adaptive (see ClaimAhead): about twice concurrency × commit time ÷ step time, at most 16 × concurrency
   */
  prefetch: z.number().int().min(0).max(10_000).optional(),
  /** Worker threads of the agent pool (default: the core count). */
  threads: z.number().int().min(1).max(256).optional(),
  /** This process's node id in leases (default: "<hostname>-<pid>"). */
  nodeId: z.string().min(1).max(200).optional(),
  /** Start claiming and running steps at open (default: true). With false, call start() later. */
  work: z.boolean().default(true),
  /**
   * SQLite only: run the store's statements and fsyncs on a thread of its own, so they never
   * block the event loop (also with `work: false`: an engine started later keeps its store).
   * false: on the calling thread, for a process that opens, makes one call and closes (it
   * skips the thread's start-up); the CLI's one-shot commands do this.
   * @default true
   */
  storeThread: z.boolean().default(true),
  /** Settings layered over `<root>/relaymesh-settings.json` (same fields; validated together). */
  settings: z.record(z.string(), z.unknown()).optional(),
  /** Module agents, in addition to `<root>/agents/modules.json`. */
  agents: z.array(ModuleAgentSchema).default([]),
  /** Who this engine's actions are attributed to in the audit log (default: "api"). */
  actor: z.string().min(1).max(200).optional(),
  /** How often an idle worker looks for work submitted by other processes (default: 100). */
  pollIntervalMs: durationMs(5).max(60_000).default(100),
  /** An existing Piscina pool running RelayMesh's agent worker (AGENT_WORKER_FILE); left open by close(). */
  piscina: z.custom<Piscina>(isPiscina, "must be a Piscina pool").optional(),
});
export type EngineOptions = z.input<typeof EngineOptionsSchema>;
export type ResolvedEngineOptions = z.output<typeof EngineOptionsSchema>;

/** Options of `close()`. */
export const CloseOptionsSchema = z.strictObject({
  /** How long in-flight steps may run on before they are aborted and their leases released (default: 30000). */
  timeoutMs: durationMs().default(30_000),
  /** Abort in-flight steps at once and release their leases (default: false). */
  force: z.boolean().default(false),
}).default({ timeoutMs: 30_000, force: false });
export type CloseOptions = z.input<typeof CloseOptionsSchema>;

/** Options of `waitFor()`. */
export const WaitOptionsSchema = z.strictObject({
  /** Give up (RELAYMESH_ERR_WAIT_TIMEOUT) after this long (default: wait for ever). */
  timeoutMs: durationMs().optional(),
  /** How often the store is read for a task another process runs (default: 250). */
  pollIntervalMs: durationMs(1).optional(),
});

/** An interval of `watchSettings()` / `watchKv()`, in ms. */
export const IntervalMsSchema = durationMs(1);

/** Parses an API argument, or throws InvalidOptionsError naming the method. */
export function parseArgument<S extends z.ZodType>(schema: S, value: unknown, method: string): z.output<S> {
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw new InvalidOptionsError(`${method}: ${z.prettifyError(parsed.error)}`, { cause: parsed.error });
  return parsed.data;
}

/** Checked by shape, so that a process that never works does not load Piscina to validate options. */
function isPiscina(v: unknown): v is Piscina {
  const p = v as Partial<Piscina> | null;
  return typeof p === "object" && p !== null && typeof p.run === "function" && typeof p.close === "function" && typeof p.options === "object";
}
