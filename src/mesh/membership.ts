import type { Settings } from "../model/settings.js";

/** A node's standing, by the age of its heartbeat. */
export const MEMBER_STATUSES = ["ALIVE", "SUSPECT", "DEAD"] as const;
export type MemberStatus = (typeof MEMBER_STATUSES)[number];

const RANK: Record<MemberStatus, number> = { ALIVE: 0, SUSPECT: 1, DEAD: 2 };

export interface Standing {
  status: MemberStatus;
  /** When the node entered `status`. */
  sinceMs: number;
}

/**
 * The next standing of a node. Worse news applies at once (heartbeat older than
 * `suspectAfterMs` → SUSPECT, older than `deadAfterMs` → DEAD); recovery only after the node has
 * spent its minimum dwell in the worse state (`suspectRecoverMinMs`, `deadRecoverMinMs`), so a
 * node whose heartbeats come and go does not flap.
 */
export function nextStanding(current: Standing, lastHeartbeatMs: number, nowMs: number, s: Settings): Standing {
  const age = nowMs - lastHeartbeatMs;
  const target: MemberStatus = age > s.deadAfterMs ? "DEAD" : age > s.suspectAfterMs ? "SUSPECT" : "ALIVE";
  if (RANK[target] > RANK[current.status]) return { status: target, sinceMs: nowMs };
  if (RANK[target] === RANK[current.status]) return current;
  const dwell = current.status === "DEAD" ? s.deadRecoverMinMs : s.suspectRecoverMinMs;
  return nowMs - current.sinceMs >= dwell ? { status: target, sinceMs: nowMs } : current;
}
