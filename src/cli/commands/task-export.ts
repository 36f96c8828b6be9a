import { withMesh, type CommandResult, type GlobalOptions } from "../context.js";

export default async function taskExport(globals: GlobalOptions, taskId: string, flags: { out: string }): Promise<CommandResult> {
  return withMesh(globals, { work: false }, async (mesh) => {
    const result = await mesh.taskExport(taskId, flags.out);
    return { data: result, human: `wrote task ${taskId} with ${result.auditRecords} audit record(s) to ${result.out}` };
  });
}
