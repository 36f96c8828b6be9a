import { withMesh, type CommandResult, type GlobalOptions } from "../context.js";
import { preflightWorkflow, readWorkflowFile } from "../preflight.js";

export interface SubmitWorkflowFlags {
  file: string;
  idempotencyKey?: string;
  traceparent?: string;
}

export default async function submitWorkflow(globals: GlobalOptions, flags: SubmitWorkflowFlags): Promise<CommandResult> {
  const raw = readWorkflowFile(flags.file);
  const options = { idempotencyKey: flags.idempotencyKey, traceparent: flags.traceparent, source: flags.file };
  preflightWorkflow(globals, raw, flags.file, options);
  return withMesh(globals, { work: false }, async (mesh) => {
    const result = await mesh.submitWorkflow(raw, options);
    return {
      data: result,
      human: `${result.created ? "submitted" : "already submitted (idempotency key)"}: task ${result.taskId} (${result.steps} steps)`,
    };
  });
}
