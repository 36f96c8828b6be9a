import { withMesh, type CommandResult, type GlobalOptions } from "../context.js";

/** One pass over the inbox folders: claim, submit, move to done/ or dead/. */
export default async function ingest(globals: GlobalOptions): Promise<CommandResult> {
  return withMesh(globals, { work: false }, async (mesh) => {
    const result = await mesh.ingest();
    return {
      data: result,
      human: `submitted ${result.submitted.length} file(s), ${result.dead.length} invalid file(s) moved to inbox/dead/`,
    };
  });
}
