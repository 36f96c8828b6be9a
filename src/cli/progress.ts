import cliProgress from "cli-progress";
import type { RelayMesh } from "../engine.js";

/**
 * A progress bar on stderr counting a task's finished steps — only when stderr is a terminal,
 * so pipes and logs stay clean. Returns the function that stops it.
 */
export function showTaskProgress(mesh: RelayMesh, taskId: string, totalSteps: number): () => void {
  if (!process.stderr.isTTY) return () => {};
  const bar = new cliProgress.SingleBar({
    stream: process.stderr,
    format: "{bar} {value}/{total} steps | {status}",
    hideCursor: true,
    clearOnComplete: false,
  }, cliProgress.Presets.shades_classic);
  let done = 0;
  bar.start(totalSteps, 0, { status: "running" });
  const onSucceeded = (e: { taskId: string }) => { if (e.taskId === taskId) bar.update(++done); };
  const onFailed = (e: { taskId: string; stepId: string; willRetry: boolean }) => {
    if (e.taskId === taskId) bar.update(done, { status: e.willRetry ? `retrying ${e.stepId}` : `${e.stepId} dead-lettered` });
  };
  mesh.on("step:succeeded", onSucceeded).on("step:failed", onFailed);
  return () => {
    mesh.off("step:succeeded", onSucceeded).off("step:failed", onFailed);
    bar.stop();
  };
}
