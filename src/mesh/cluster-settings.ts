import { SettingsSchema, type Settings } from "../model/settings.js";
import type { Store } from "../store/store.js";

/**
 * The settings every node of a shared store must agree on (lease and membership timings, retry
 * defaults, limits, claim policy): the store keeps one copy. The rest (`durability`, which only
 * the SQLite store reads) stays per node, as do the engine options (concurrency, node id, inbox).
 */
export const CLUSTER_FIELDS = (Object.keys(SettingsSchema.parse({})) as (keyof Settings)[]).filter((k) => k !== "durability");

/** The store's copy of the cluster settings: `version` goes up by one with each publication. */
export interface ClusterSettings {
  version: number;
  values: Partial<Settings>;
  atMs: number;
  /** Who published it ("cli:<user>", "node:<id>"). */
  by: string;
}

const META = "cluster-settings";

export async function readClusterSettings(store: Store): Promise<ClusterSettings | null> {
  const raw = await store.meta(META);
  return raw === null ? null : JSON.parse(raw) as ClusterSettings;
}

/** Makes `settings`' cluster fields the store's (the next version). */
export async function publishClusterSettings(store: Store, settings: Settings, by: string, atMs: number): Promise<ClusterSettings> {
  const previous = await readClusterSettings(store);
  const next: ClusterSettings = { version: (previous?.version ?? 0) + 1, values: pickCluster(settings), atMs, by };
  await store.setMeta(META, JSON.stringify(next));
  return next;
}

/** A node's settings under the cluster's: the cluster fields from the store, the rest from the node. */
export function underCluster(local: Settings, cluster: ClusterSettings): Settings {
  const known = pickCluster(cluster.values);
  const merged = SettingsSchema.safeParse({ ...local, ...known });
  return merged.success ? merged.data : local;
}

/** Cluster fields on which `local` differs from the cluster's copy, sorted. */
export function disagreements(local: Settings, cluster: ClusterSettings): string[] {
  const values = pickCluster(cluster.values);
  return CLUSTER_FIELDS.filter((k) => k in values && JSON.stringify(local[k]) !== JSON.stringify(values[k])).sort();
}

function pickCluster(values: Partial<Settings>): Partial<Settings> {
  const out: Partial<Record<keyof Settings, unknown>> = {};
  for (const k of CLUSTER_FIELDS) if (values[k] !== undefined) out[k] = values[k];
  return out as Partial<Settings>;
}
