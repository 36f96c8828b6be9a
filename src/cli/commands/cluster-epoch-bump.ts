import { withMesh, type CommandResult, type GlobalOptions } from "../context.js";

export default async function clusterEpochBump(globals: GlobalOptions, flags: { reason: string }): Promise<CommandResult> {
  return withMesh(globals, { work: false }, async (mesh) => {
    const result = await mesh.bumpClusterEpoch(flags.reason);
    return { data: result, human: `cluster epoch is now ${result.clusterEpoch}; ${result.fencedSteps} running step(s) fenced and made READY again` };
  });
}
