import { choiceOption, withMesh, type CommandResult, type GlobalOptions } from "../context.js";

export default async function cancel(globals: GlobalOptions, taskId: string, flags: { mode?: string; reason?: string }): Promise<CommandResult> {
  const mode = choiceOption("mode", flags.mode, ["hard", "soft"] as const) ?? "hard";
  return withMesh(globals, { work: false }, async (mesh) => {
    const result = await mesh.cancel(taskId, { mode, ...(flags.reason !== undefined ? { reason: flags.reason } : {}) });
    return {
      data: result,
      human: `task ${taskId}: ${result.status}; ${result.cancelledSteps.length} step(s) cancelled${result.cancelledSteps.length ? ` (${result.cancelledSteps.join(", ")})` : ""}`,
    };
  });
}
