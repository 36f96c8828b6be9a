import { withMesh, type CommandResult, type GlobalOptions } from "../context.js";

export default async function snapshotExport(globals: GlobalOptions, flags: { out: string }): Promise<CommandResult> {
  return withMesh(globals, { work: false }, async (mesh) => {
    const result = await mesh.snapshotExport(flags.out);
    return { data: result, human: `snapshot of ${mesh.root} written to ${result.out}` };
  });
}
