import { intOption, withMesh, type CommandResult, type GlobalOptions } from "../context.js";

/** One maintenance tick as node `--node-id`: standings, reclaims, prune. */
export default async function maintenance(globals: GlobalOptions, flags: { nodeId?: string; limit?: string }): Promise<CommandResult> {
  const recoverLimit = intOption("limit", flags.limit, { min: 1, max: 100_000 });
  return withMesh(globals, { work: false, ...(flags.nodeId !== undefined ? { nodeId: flags.nodeId } : {}) }, async (mesh) => {
    const result = await mesh.maintenance(recoverLimit !== undefined ? { recoverLimit } : {});
    return {
      data: { nodeId: mesh.nodeId, ...result },
      human: `maintenance as ${mesh.nodeId}: ${result.membership.length} standing change(s)` +
        `${result.membership.length ? ` (${result.membership.map((m) => `${m.nodeId} ${m.from}→${m.to}`).join(", ")})` : ""}, ` +
        `${result.reclaimedFromDead} step(s) taken from DEAD nodes, ${result.reclaimedExpired} expired lease(s) reclaimed, ${result.pruned} node row(s) pruned`,
    };
  });
}
