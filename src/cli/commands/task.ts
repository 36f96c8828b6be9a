import { taskView } from "../../model/views.js";
import { withMesh, type CommandResult, type GlobalOptions } from "../context.js";
import { brief, table, time } from "../format.js";

export default async function task(globals: GlobalOptions, taskId: string): Promise<CommandResult> {
  return withMesh(globals, { work: false }, async (mesh) => {
    const view = taskView(await mesh.getTask(taskId));
    return { data: view, human: renderTask(view) };
  });
}

export function renderTask(view: ReturnType<typeof taskView>): string {
  const head = `task ${view.taskId}${view.name ? ` (${view.name})` : ""}: ${view.status}${view.cancelReason ? ` (${view.cancelReason})` : ""}, ` +
    `priority ${view.priority}, created ${time(view.createdAtMs)}${view.deadlineAtMs !== null ? `, deadline ${time(view.deadlineAtMs)}` : ""}` +
    `${view.scheduleName ? `, fired by schedule ${view.scheduleName}` : ""}`;
  const steps = table(
    ["STEP", "AGENT", "STATUS", "ATTEMPT", "EPOCH", "OWNER", "OUTPUT / ERROR / WAITING FOR"],
    view.steps.map((s) => [s.stepId, s.agent, s.status, `${s.attempt}/${s.maxAttempts}`, s.leaseEpoch, s.leaseOwner,
      s.waitingFor !== null ? s.waitingFor : s.error && s.status !== "SUCCESS" ? brief(s.error.message) : brief(s.output)]),
  );
  return `${head}\n${steps}`;
}
