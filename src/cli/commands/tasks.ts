import { TASK_STATUSES } from "../../store/types.js";
import { taskSummaryView } from "../../model/views.js";
import { choiceOption, intOption, withMesh, type CommandResult, type GlobalOptions } from "../context.js";
import { table, time } from "../format.js";

export interface TasksFlags {
  status?: string;
  limit?: string;
  offset?: string;
}

export default async function tasks(globals: GlobalOptions, flags: TasksFlags): Promise<CommandResult> {
  const status = choiceOption("status", flags.status, TASK_STATUSES);
  const limit = intOption("limit", flags.limit, { min: 1, max: 10_000 }) ?? 50;
  const offset = intOption("offset", flags.offset) ?? 0;
  return withMesh(globals, { work: false }, async (mesh) => {
    const { tasks, total } = await mesh.listTasks({ ...(status ? { status } : {}), limit, offset });
    const views = tasks.map(taskSummaryView);
    return {
      data: { tasks: views, total },
      human: `${table(["TASK", "STATUS", "PRIORITY", "NAME", "CREATED"], views.map((t) => [t.taskId, t.status, t.priority, t.name, time(t.createdAtMs)]))}\n` +
        `${views.length} of ${total}`,
    };
  });
}
