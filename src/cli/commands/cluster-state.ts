import { withMesh, type CommandResult, type GlobalOptions } from "../context.js";

export default async function clusterState(globals: GlobalOptions): Promise<CommandResult> {
  return withMesh(globals, { work: false }, async (mesh) => {
    const state = await mesh.clusterState();
    return { data: state, human: `cluster epoch ${state.clusterEpoch}` };
  });
}
