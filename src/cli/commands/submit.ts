import { PRIORITIES } from "../../model/workflow.js";
import { choiceOption, durationOption, jsonOption, timeOption, withMesh, type CommandResult, type GlobalOptions } from "../context.js";
import { ExitCode, ExitError } from "../errors.js";

export interface SubmitFlags {
  agent: string;
  input?: string;
  priority?: string;
  idempotencyKey?: string;
  traceparent?: string;
  delay?: string;
  notBefore?: string;
}

export default async function submit(globals: GlobalOptions, flags: SubmitFlags): Promise<CommandResult> {
  const priority = choiceOption("priority", flags.priority, PRIORITIES);
  if (flags.delay !== undefined && flags.notBefore !== undefined) throw new ExitError(ExitCode.USAGE, "--delay and --not-before: give one, not both");
  const delayMs = durationOption("delay", flags.delay);
  const notBefore = timeOption("not-before", flags.notBefore);
  const spec = {
    agent: flags.agent,
    ...(flags.input !== undefined ? { input: jsonOption("input", flags.input) } : {}),
    ...(priority !== undefined ? { priority } : {}),
  };
  return withMesh(globals, { work: false }, async (mesh) => {
    const { taskId, created } = await mesh.submit(spec, { idempotencyKey: flags.idempotencyKey, traceparent: flags.traceparent, delayMs, notBefore });
    return { data: { taskId, created }, human: `${created ? "submitted" : "already submitted (idempotency key)"}: task ${taskId}` };
  });
}
