import { intOption, numberOption, withMesh, type CommandResult, type GlobalOptions } from "../context.js";
import { table, time } from "../format.js";

export interface LeaseConflictsFlags {
  sinceHours?: string;
  limit?: string;
}

export default async function leaseConflicts(globals: GlobalOptions, flags: LeaseConflictsFlags): Promise<CommandResult> {
  const sinceHours = numberOption("since-hours", flags.sinceHours) ?? 24;
  const limit = intOption("limit", flags.limit, { min: 1, max: 100_000 }) ?? 100;
  return withMesh(globals, { work: false }, async (mesh) => {
    const conflicts = (await mesh.leaseConflicts({ sinceMs: Date.now() - sinceHours * 3_600_000, limit }));
    return {
      data: { conflicts },
      human: table(["AT", "TASK", "STEP", "EXPECTED", "ACTUAL", "NODE", "OPERATION"],
        conflicts.map((c) => [time(c.atMs), c.taskId, c.stepId, c.expectedLeaseEpoch, c.actualLeaseEpoch, c.nodeId, c.operation])),
    };
  });
}
