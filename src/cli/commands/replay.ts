import { withMesh, type CommandResult, type GlobalOptions } from "../context.js";

export default async function replay(globals: GlobalOptions, taskId: string): Promise<CommandResult> {
  return withMesh(globals, { work: false }, async (mesh) => {
    const result = await mesh.replay(taskId);
    return { data: result, human: `replayed task ${taskId}; a worker will run its dead steps again` };
  });
}
