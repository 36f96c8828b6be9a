import { withMesh, type CommandResult, type GlobalOptions } from "../context.js";
import { table } from "../format.js";

export default async function agents(globals: GlobalOptions): Promise<CommandResult> {
  return withMesh(globals, { work: false }, async (mesh) => {
    const list = mesh.agents.list();
    return { data: { agents: list }, human: table(["AGENT", "KIND"], list.map((a) => [a.id, a.kind])) };
  });
}
