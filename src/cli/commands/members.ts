import { MEMBER_STATUSES } from "../../mesh/membership.js";
import { withMesh, type CommandResult, type GlobalOptions } from "../context.js";
import { table, time } from "../format.js";

/** Every node (with the agents it serves and its load), counts per standing, and READY steps no live node can run. */
export default async function members(globals: GlobalOptions): Promise<CommandResult> {
  return withMesh(globals, { work: false }, async (mesh) => {
    const nodes = await mesh.members();
    const list = nodes.map((n) => ({
      nodeId: n.nodeId, status: n.status, lastHeartbeatMs: n.lastHeartbeatMs, statusSinceMs: n.statusSinceMs,
      state: n.state, hostname: n.hostname, pid: n.pid, startedAtMs: n.startedAtMs, agents: n.agents, load: n.load,
    }));
    const counts = Object.fromEntries(MEMBER_STATUSES.map((s) => [s, list.filter((n) => n.status === s).length]));
    const unservable = await mesh.unservable();
    return {
      data: { members: list, counts, unservable },
      human: `${table(["NODE", "STATUS", "SINCE", "LAST HEARTBEAT", "STATE", "HOST", "PID"],
        list.map((n) => [n.nodeId, n.status, time(n.statusSinceMs), time(n.lastHeartbeatMs), n.state, n.hostname, n.pid]))}\n` +
        MEMBER_STATUSES.map((s) => `${counts[s]} ${s}`).join(", ") +
        unservable.map((u) => `\n${u.readySteps} READY step(s) of agent "${u.agent}": no live node serves it (waiting ${u.waitingMs} ms)`).join(""),
    };
  });
}
