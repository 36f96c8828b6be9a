import { intOption, withMesh, type CommandResult, type GlobalOptions } from "../context.js";

export default async function deadExport(globals: GlobalOptions, flags: { out: string; limit?: string }): Promise<CommandResult> {
  const limit = intOption("limit", flags.limit, { min: 1, max: 1_000_000 }) ?? 1000;
  return withMesh(globals, { work: false }, async (mesh) => {
    const result = await mesh.deadExport(flags.out, { limit });
    return { data: result, human: `wrote ${result.count} dead-lettered task(s) to ${result.out}` };
  });
}
