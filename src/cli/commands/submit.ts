import { PRIORITIES } from "../../model/workflow.js";
import { choiceOption, jsonOption, withMesh, type CommandResult, type GlobalOptions } from "../context.js";

export interface SubmitFlags {
  agent: string;
  input?: string;
  priority?: string;
  idempotencyKey?: string;
  traceparent?: string;
}

export default async function submit(globals: GlobalOptions, flags: SubmitFlags): Promise<CommandResult> {
  const priority = choiceOption("priority", flags.priority, PRIORITIES);
  const spec = {
    agent: flags.agent,
    ...(flags.input !== undefined ? { input: jsonOption("input", flags.input) } : {}),
    ...(priority !== undefined ? { priority } : {}),
  };
  return withMesh(globals, { work: false }, async (mesh) => {
    const { taskId, created } = await mesh.submit(spec, { idempotencyKey: flags.idempotencyKey, traceparent: flags.traceparent });
    return { data: { taskId, created }, human: `${created ? "submitted" : "already submitted (idempotency key)"}: task ${taskId}` };
  });
}
