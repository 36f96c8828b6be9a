import type { Settings } from "../model/settings.js";
import type { Store } from "../store/store.js";
import { nextStanding, type MemberStatus } from "./membership.js";

export interface MaintenanceOptions {
  store: Store;
  settings: Settings;
  /** The node doing the tick (recorded on reclaims). */
  nodeId: string;
  nowMs: number;
  /** RUNNING steps of DEAD nodes reclaimed per tick at most. */
  recoverLimit: number;
  /** Prune DEAD node rows this tick. */
  prune: boolean;
}

export interface MaintenanceResult {
  /** Standings that changed. */
  membership: { nodeId: string; from: MemberStatus; to: MemberStatus }[];
  /** Leases of DEAD nodes' steps ended, then reclaimed. */
  reclaimedFromDead: number;
  /** Expired leases reclaimed (DEAD owners' included). */
  reclaimedExpired: number;
  /** DEAD node rows removed. */
  pruned: number;
}

/**
 * One maintenance tick: re-evaluate every node's standing (with dwell windows), take back the
 * steps of DEAD nodes at a bounded rate, reclaim expired leases, and prune old DEAD rows.
 */
export async function maintenanceTick(o: MaintenanceOptions): Promise<MaintenanceResult> {
  const nodes = await o.store.listNodes();
  const membership: MaintenanceResult["membership"] = [];
  const updates: { nodeId: string; status: MemberStatus; sinceMs: number }[] = [];
  const dead: string[] = [];
  for (const n of nodes) {
    const next = nextStanding({ status: n.status, sinceMs: n.statusSinceMs }, n.lastHeartbeatMs, o.nowMs, o.settings);
    if (next.status !== n.status) {
      membership.push({ nodeId: n.nodeId, from: n.status, to: next.status });
      updates.push({ nodeId: n.nodeId, ...next });
    }
    if (next.status === "DEAD") dead.push(n.nodeId);
  }
  if (updates.length > 0) await o.store.setMemberships(updates);
  const reclaimedFromDead = dead.length > 0 ? await o.store.expireLeasesOf(dead, o.recoverLimit, o.nowMs, o.nodeId) : 0;
  const committed = await o.store.commit({
    nowMs: o.nowMs, nodeId: o.nodeId, leaseTimeoutMs: o.settings.leaseTimeoutMs, submissions: [], completions: [], failures: [],
    renewals: [], releases: [], releaseRetriesLimit: 0, reclaimExpiredLimit: Math.max(o.recoverLimit, 100), claim: null,
  });
  const pruned = o.prune ? await o.store.pruneNodes(o.nowMs - o.settings.meshPruneOlderThanMs, o.settings.meshPruneLimit) : 0;
  return { membership, reclaimedFromDead, reclaimedExpired: committed.reclaimed, pruned };
}
