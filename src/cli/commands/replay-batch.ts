import { TASK_STATUSES } from "../../store/types.js";
import { choiceOption, intOption, withMesh, type CommandResult, type GlobalOptions } from "../context.js";

export default async function replayBatch(globals: GlobalOptions, flags: { status?: string; limit?: string }): Promise<CommandResult> {
  const status = choiceOption("status", flags.status, TASK_STATUSES) ?? "DEAD_LETTER";
  const limit = intOption("limit", flags.limit, { min: 1, max: 100_000 }) ?? 100;
  return withMesh(globals, { work: false }, async (mesh) => {
    const result = await mesh.replayBatch({ status, limit });
    return { data: result, human: `replayed ${result.replayed.length} task(s)${result.replayed.length ? `: ${result.replayed.join(", ")}` : ""}` };
  });
}
