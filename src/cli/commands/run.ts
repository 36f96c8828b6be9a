import { ErrorCode, isRelayMeshError } from "../../errors.js";
import { taskView } from "../../model/views.js";
import type { TaskWithSteps } from "../../store/types.js";
import { ExitCode } from "../errors.js";
import { durationOption, intOption, openMesh, type CommandResult, type GlobalOptions } from "../context.js";
import { preflightWorkflow, readWorkflowFile } from "../preflight.js";
import { showTaskProgress } from "../progress.js";
import { handleShutdownSignals } from "../signals.js";
import { renderTask } from "./task.js";

export interface RunFlags {
  concurrency?: string;
  timeoutMs?: string;
}

/** Submits a workflow file and works until that task ends. */
export default async function run(globals: GlobalOptions, file: string, flags: RunFlags): Promise<CommandResult> {
  const concurrency = intOption("concurrency", flags.concurrency, { min: 1, max: 10_000 });
  const timeoutMs = durationOption("timeout-ms", flags.timeoutMs, 1);
  const raw = readWorkflowFile(file);
  preflightWorkflow(globals, raw, file, {});
  const startedAt = Date.now();
  const mesh = await openMesh(globals, { work: true, ...(concurrency !== undefined ? { concurrency } : {}) });
  let timedOut = false;
  let interrupted = false;
  // Ctrl-C stops waiting: running steps are aborted and their leases released, so any worker can finish the task.
  let onSignal = () => {};
  const signalled = new Promise<void>((resolve) => { onSignal = resolve; });
  const removeHandlers = handleShutdownSignals(onSignal, () => { void mesh.close({ force: true }); }, {
    firstMessage: "stopping: running steps are aborted and their leases released",
  });
  try {
    const { taskId, steps } = await mesh.submitWorkflow(raw, { source: file });
    const stopProgress = showTaskProgress(mesh, taskId, steps);
    let task: TaskWithSteps;
    try {
      const finished = await Promise.race([mesh.waitFor(taskId, timeoutMs !== undefined ? { timeoutMs } : {}), signalled]);
      interrupted = finished === undefined;
      task = finished ?? await mesh.getTask(taskId);
    } catch (error) {
      if (!isRelayMeshError(error) || error.code !== ErrorCode.WAIT_TIMEOUT) throw error;
      timedOut = true;
      task = await mesh.getTask(taskId);
    } finally {
      stopProgress();
    }
    const view = taskView(task);
    const seconds = ((Date.now() - startedAt) / 1000).toFixed(2);
    const counts = new Map<string, number>();
    for (const s of view.steps) counts.set(s.status, (counts.get(s.status) ?? 0) + 1);
    const summary = `${timedOut ? `timed out after ${timeoutMs} ms: ` : ""}task ${view.taskId} ${view.status} in ${seconds}s — ` +
      [...counts].map(([status, n]) => `${n} ${status}`).join(", ");
    if (timedOut) process.stderr.write(`relaymesh: task ${view.taskId} did not finish within --timeout-ms ${timeoutMs}; it is ${view.status}\n`);
    if (interrupted) process.stderr.write(`relaymesh: interrupted; task ${view.taskId} is ${view.status} and a worker can finish it\n`);
    return { data: view, human: `${renderTask(view)}\n${summary}`, exitCode: view.status === "SUCCESS" ? ExitCode.OK : ExitCode.FAILED };
  } finally {
    await mesh.close(timedOut || interrupted ? { timeoutMs: 0 } : {});
    removeHandlers();
  }
}
