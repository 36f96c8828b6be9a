import { workflowView } from "../../model/views.js";
import { withMesh, type CommandResult, type GlobalOptions } from "../context.js";
import { table } from "../format.js";

export default async function workflow(globals: GlobalOptions, taskId: string): Promise<CommandResult> {
  return withMesh(globals, { work: false }, async (mesh) => {
    const view = workflowView(await mesh.getTask(taskId));
    const human = `task ${view.taskId}: ${view.status}\n` +
      table(["STEP", "STATUS", "DEPENDS ON", "WAITING FOR"], view.steps.map((s) => [s.stepId, s.status, s.dependsOn.join(", ") || "-", s.waitingFor])) +
      (view.edges.length > 0 ? `\nedges: ${view.edges.map(([a, b]) => `${a} -> ${b}`).join(", ")}` : "");
    return { data: view, human };
  });
}
