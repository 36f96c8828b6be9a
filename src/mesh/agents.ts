import type { NodeRecord, OpsSnapshot } from "../store/types.js";

/** READY steps of an agent that no live node serves: a missing worker type, made visible. */
export interface UnservableAgent {
  agent: string;
  readySteps: number;
  /** When the oldest of them became READY. */
  oldestReadyAtMs: number;
  waitingMs: number;
}

/** Nodes working now: running and ALIVE. */
export function liveNodes(nodes: readonly NodeRecord[]): NodeRecord[] {
  return nodes.filter((n) => n.state === "running" && n.status === "ALIVE");
}

/** Whether a node serves an agent (a node that never advertised its agents is taken to serve any). */
export function serves(node: NodeRecord, agent: string): boolean {
  return node.agents === null || node.agents.includes(agent);
}

/** For each agent any node advertises, the live nodes that serve it (sorted). */
export function agentDirectory(nodes: readonly NodeRecord[]): Map<string, string[]> {
  const live = liveNodes(nodes);
  const out = new Map<string, string[]>();
  for (const n of nodes) for (const a of n.agents ?? []) out.set(a, []);
  for (const [agent, list] of out) list.push(...live.filter((n) => serves(n, agent)).map((n) => n.nodeId).sort());
  return out;
}

/** The READY steps no live node can run, per agent, longest waiting first. */
export function unservableAgents(snapshot: Pick<OpsSnapshot, "readyByAgent" | "atMs">, nodes: readonly NodeRecord[]): UnservableAgent[] {
  const live = liveNodes(nodes);
  return snapshot.readyByAgent
    .filter((r) => !live.some((n) => serves(n, r.agent)))
    .map((r) => ({ agent: r.agent, readySteps: r.count, oldestReadyAtMs: r.oldestReadyAtMs, waitingMs: Math.max(0, snapshot.atMs - r.oldestReadyAtMs) }))
    .sort((a, b) => b.waitingMs - a.waitingMs);
}
