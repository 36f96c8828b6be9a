import { withMesh, type CommandResult, type GlobalOptions } from "../context.js";
import { table } from "../format.js";

/** This node's agents and those other nodes of the store advertise, each with the live nodes serving it. */
export default async function agents(globals: GlobalOptions): Promise<CommandResult> {
  return withMesh(globals, { work: false }, async (mesh) => {
    const list = await mesh.agentDirectory();
    return { data: { agents: list }, human: table(["AGENT", "KIND", "LIVE NODES"], list.map((a) => [a.id, a.kind, a.nodes.join(", ") || "-"])) };
  });
}
