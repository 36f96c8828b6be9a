import { withMesh, type CommandResult, type GlobalOptions } from "../context.js";
import { ExitCode, ExitError } from "../errors.js";

/**
 * `bench purge [RUN_ID]`: deletes the finished tasks of `bench --in-place` runs (named
 * `bench:<run id>`) from the real store — of one run, or of every run.
 */
export default async function benchPurge(globals: GlobalOptions, runId: string | undefined): Promise<CommandResult> {
  if (runId !== undefined && !/^[A-Za-z0-9_-]{1,64}$/.test(runId)) throw new ExitError(ExitCode.USAGE, `bench purge: "${runId}" is not a run id (the hex id a bench report names as runId)`);
  const namePrefix = runId === undefined ? "bench:" : `bench:${runId}`;
  const result = await withMesh(globals, { work: false }, (mesh) => mesh.purge({ doneRetentionDays: 0, deadRetentionDays: 0, idempotencyTtlDays: 0, namePrefix }));
  return {
    data: { namePrefix, finishedTasks: result.finishedTasks, deadLetters: result.deadLetters },
    human: `purged ${result.finishedTasks} finished task(s) and ${result.deadLetters} dead letter(s) named ${namePrefix}${runId === undefined ? "*" : ""}`,
  };
}
