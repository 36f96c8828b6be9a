import { intOption, withMesh, type CommandResult, type GlobalOptions } from "../context.js";

export default async function meshPrune(globals: GlobalOptions, flags: { olderThanMs?: string; limit?: string }): Promise<CommandResult> {
  const olderThanMs = intOption("older-than-ms", flags.olderThanMs);
  const limit = intOption("limit", flags.limit, { min: 1, max: 1_000_000 });
  return withMesh(globals, { work: false }, async (mesh) => {
    const result = await mesh.meshPrune({ ...(olderThanMs !== undefined ? { olderThanMs } : {}), ...(limit !== undefined ? { limit } : {}) });
    return { data: result, human: `${result.pruned} DEAD node row(s) pruned` };
  });
}
