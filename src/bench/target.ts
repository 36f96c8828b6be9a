import { randomBytes } from "node:crypto";
import { copyFileSync, existsSync, rmSync } from "node:fs";
import { isAbsolute, join, resolve } from "node:path";
import { writeJsonFile } from "../ops/exports.js";
import { ensureRoot, rootPaths, type RootConfig, type RootPaths } from "../root.js";
import { scratchStoreFor } from "../store/scratch.js";

/** Where a benchmark runs: a root folder and a store URL, and what to remove afterwards. */
export interface BenchTarget {
  root: string;
  store: string | undefined;
  /** True when the run uses the user's real root and store (`--in-place`). */
  inPlace: boolean;
  /** Human-readable store location. */
  location: string;
  /** Removes the scratch root and store (nothing for an in-place run). Idempotent. */
  cleanup(): Promise<void>;
}

/**
 * A scratch root in `<root>/reports/bench-*` holding the user's settings and agents (their
 * paths made absolute, so modules and scripts resolve as in the real root), with a scratch store
 * of the same kind as the user's: benchmark tasks never mix with real ones.
 */
export function scratchTarget(user: RootPaths, config: RootConfig, storeUrl: string | undefined): BenchTarget {
  const dir = join(user.reportsDir, `bench-${randomBytes(4).toString("hex")}`);
  // Checks the store URL before anything is written.
  const store = scratchStoreFor(storeUrl, dir);
  const scratch = rootPaths(dir);
  const cleanup = async () => {
    try {
      await store.drop();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
  ensureRoot(user);
  try {
    ensureRoot(scratch);
    if (existsSync(user.settings)) copyFileSync(user.settings, scratch.settings);
    if (existsSync(user.retryPolicies)) copyFileSync(user.retryPolicies, scratch.retryPolicies);
    if (config.modules.length > 0) {
      writeJsonFile(scratch.modules, { agents: config.modules.map((m) => ({ ...m, module: isAbsolute(m.module) ? m.module : resolve(user.dir, m.module) })) });
    }
    if (config.scripts.length > 0) {
      // Already resolved against the user's root by loadScriptAgents.
      writeJsonFile(join(scratch.agentsDir, "scripts.json"), {
        agents: config.scripts.map(({ instances, ...s }) => ({ ...s, ...(s.mode === "persistent" ? { instances } : {}) })),
      });
    }
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  return { root: dir, store: store.url, inPlace: false, location: store.location, cleanup };
}

/** The user's own root and store (`--in-place`). */
export function inPlaceTarget(user: RootPaths, storeUrl: string | undefined): BenchTarget {
  return { root: user.dir, store: storeUrl, inPlace: true, location: storeUrl ?? `sqlite:${user.db}`, cleanup: async () => {} };
}
