import { intOption, withMesh, type CommandResult, type GlobalOptions } from "../context.js";

/** Reclaims the RUNNING steps of DEAD nodes (standings evaluated first). */
export default async function meshRecover(globals: GlobalOptions, flags: { limit?: string }): Promise<CommandResult> {
  const recoverLimit = intOption("limit", flags.limit, { min: 1, max: 100_000 }) ?? 1000;
  return withMesh(globals, { work: false }, async (mesh) => {
    const result = await mesh.maintenance({ recoverLimit, prune: false });
    return {
      data: { reclaimed: result.reclaimedFromDead, reclaimedExpired: result.reclaimedExpired, membership: result.membership },
      human: `${result.reclaimedFromDead} step(s) reclaimed from DEAD nodes (${result.reclaimedExpired} expired lease(s) in all)`,
    };
  });
}
