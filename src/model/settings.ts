import { z } from "zod";
import { durationMs } from "./duration.js";
import { RateLimitSettingSchema } from "./flow.js";

/** A rate limit's name: also a key of `rateLimits`, so it never starts with "_" (no "__proto__"). */
const RateLimitNameSchema = z.string().max(200).regex(/^[A-Za-z0-9][A-Za-z0-9_.:-]*$/, "a rate limit name starts with a letter or digit and uses only letters, digits and _ . : -");

/**
 * `<root>/relaymesh-settings.json`: every field optional, unknown fields rejected.
 * Defaults are filled by parsing; the rest of the engine reads only the parsed value.
 */
export const SettingsSchema = z.strictObject({
  /** How long a claimed step is owned without a heartbeat (default: 30000). */
  leaseTimeoutMs: durationMs(200).max(86_400_000).default(30_000),
  /** Node membership: heartbeat age after which a node is SUSPECT (default: 15000). */
  suspectAfterMs: durationMs(100).default(15_000),
  /** Node membership: heartbeat age after which a node is DEAD (default: 45000). */
  deadAfterMs: durationMs(100).default(45_000),
  /** Minimum time a SUSPECT node stays SUSPECT before it may be ALIVE again (default: 5000). */
  suspectRecoverMinMs: durationMs().default(5_000),
  /** Minimum time a DEAD node stays DEAD before it may be ALIVE again (default: 30000). */
  deadRecoverMinMs: durationMs().default(30_000),
  /** Stop claiming while this node is not ALIVE (default: true). */
  pauseWorkerWhenLocalNotAlive: z.boolean().default(true),
  /** Attempts per step, the first included (default: 3). */
  maxAttempts: z.number().int().min(1).max(1000).default(3),
  /** First retry delay; doubles per attempt, with jitter (default: 1000). */
  baseBackoffMs: durationMs().default(1_000),
  /** Cap on the retry delay (default: 60000). */
  maxBackoffMs: durationMs().default(60_000),
  /** Steps moved from RETRY_WAIT to READY per tick at most (default: 1000). */
  retryDispatchLimit: z.number().int().min(1).default(1_000),
  /** mesh-prune: DEAD node rows older than this are removed (default: 86400000). */
  meshPruneOlderThanMs: durationMs().default(86_400_000),
  /** mesh-prune: rows removed per run at most (default: 1000). */
  meshPruneLimit: z.number().int().min(1).default(1_000),
  /** mesh-prune: how often the maintenance tick prunes (default: 600000). */
  meshPruneIntervalMs: durationMs(1_000).default(600_000),
  /** Steps of DEAD nodes each node's maintenance tick takes back at most, so their backlog spreads over ticks and nodes (default: 100). */
  meshRecoverPerTick: z.number().int().min(1).max(100_000).default(100),
  /** Largest accepted input or output, in bytes of JSON (default: 10485760). */
  maxPayloadBytes: z.number().int().min(1_024).default(10 * 1024 * 1024),
  /** A waiting lower-priority step is forced through after this many higher picks (default: 10). */
  lowStarvationMaxPicks: z.number().int().min(1).default(10),
  /** How a node sizes its claims (default: "capacity"). */
  claimPolicy: z.enum(["capacity", "resource_usage"]).default("capacity"),
  /** SQLite `synchronous`: "full" survives power loss, "normal" only process crashes (default: "full"). */
  durability: z.enum(["full", "normal"]).default("full"),
  /** Named rate limits (token buckets shared by every node of a store), referenced by steps' `rateLimit` (default: none). */
  rateLimits: z.record(RateLimitNameSchema, RateLimitSettingSchema).default({}),
}).superRefine((s, ctx) => {
  if (s.maxBackoffMs < s.baseBackoffMs) {
    ctx.addIssue({ code: "custom", path: ["maxBackoffMs"], message: `maxBackoffMs (${s.maxBackoffMs}) must be at least baseBackoffMs (${s.baseBackoffMs})` });
  }
  if (s.deadAfterMs <= s.suspectAfterMs) {
    ctx.addIssue({ code: "custom", path: ["deadAfterMs"], message: `deadAfterMs (${s.deadAfterMs}) must be greater than suspectAfterMs (${s.suspectAfterMs})` });
  }
});
export type SettingsInput = z.input<typeof SettingsSchema>;
export type Settings = z.output<typeof SettingsSchema>;

export const DEFAULT_SETTINGS: Settings = SettingsSchema.parse({});
