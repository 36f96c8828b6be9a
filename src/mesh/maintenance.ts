import type { Settings } from "../model/settings.js";
import type { MembershipUpdate, Store, TaskStatus } from "../store/store.js";
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
  /** Steps of DEAD nodes taken back. */
  reclaimedFromDead: number;
  /** Other expired leases reclaimed. */
  reclaimedExpired: number;
  /** DEAD node rows removed. */
  pruned: number;
  /** Tasks the reclaim finished (a reclaimed step with no attempt left dead-lettered). */
  finishedTasks: { taskId: string; status: TaskStatus }[];
}

/**
 * One maintenance tick: re-evaluate every node's standing (with dwell windows), take back the
 * steps of DEAD nodes at a bounded rate, reclaim expired leases, and prune old DEAD rows.
 */
export async function maintenanceTick(o: MaintenanceOptions): Promise<MaintenanceResult> {
  const nodes = await o.store.listNodes();
  const membership: MaintenanceResult["membership"] = [];
  const updates: MembershipUpdate[] = [];
  const dead: string[] = [];
  for (const n of nodes) {
    const next = nextStanding({ status: n.status, sinceMs: n.statusSinceMs }, n.lastHeartbeatMs, o.nowMs, o.settings);
    if (next.status !== n.status) {
      membership.push({ nodeId: n.nodeId, from: n.status, to: next.status });
      updates.push({ nodeId: n.nodeId, from: { status: n.status, sinceMs: n.statusSinceMs }, ...next });
    }
    if (next.status === "DEAD") dead.push(n.nodeId);
  }
  // Another node's tick may have decided first: only the changes that applied are reported.
  if (updates.length > 0 && (await o.store.setMemberships(updates)) < updates.length) {
    const now = new Map((await o.store.listNodes()).map((n) => [n.nodeId, n]));
    const applied = (u: MembershipUpdate) => now.get(u.nodeId)?.status === u.status && now.get(u.nodeId)?.statusSinceMs === u.sinceMs;
    const kept = new Set(updates.filter(applied).map((u) => u.nodeId));
    membership.splice(0, membership.length, ...membership.filter((m) => kept.has(m.nodeId)));
  }
  const reclaimedFromDead = dead.length > 0 ? await o.store.reclaimStepsOfNodes(dead, o.recoverLimit, o.nowMs, o.nodeId) : 0;
  const committed = await o.store.commit({
    nowMs: o.nowMs, nodeId: o.nodeId, leaseTimeoutMs: o.settings.leaseTimeoutMs, submissions: [], completions: [], failures: [],
    renewals: [], releases: [], releaseRetriesLimit: 0, reclaimExpiredLimit: Math.max(o.recoverLimit, 100), claim: null,
  });
  const pruned = o.prune ? await o.store.pruneNodes(o.nowMs - o.settings.meshPruneOlderThanMs, o.settings.meshPruneLimit) : 0;
  return { membership, reclaimedFromDead, reclaimedExpired: committed.reclaimed, pruned, finishedTasks: committed.finishedTasks };
}
