import { intOption, numberOption, withMesh, type CommandResult, type GlobalOptions } from "../context.js";
import { table, time } from "../format.js";

export default async function ownershipEvents(globals: GlobalOptions, flags: { sinceHours?: string; limit?: string }): Promise<CommandResult> {
  const sinceHours = numberOption("since-hours", flags.sinceHours) ?? 24;
  const limit = intOption("limit", flags.limit, { min: 1, max: 100_000 }) ?? 100;
  return withMesh(globals, { work: false }, async (mesh) => {
    const events = await mesh.ownershipEvents({ sinceMs: Date.now() - sinceHours * 3_600_000, limit });
    return {
      data: { events },
      human: table(["AT", "KIND", "TASK", "STEP", "NODE", "FROM", "EPOCHS"], events.map((e) => [time(e.atMs), e.kind, e.taskId, e.stepId, e.nodeId, e.fromNode,
        e.kind === "lease-conflict" ? `${String(e.details.expectedLeaseEpoch)} refused (now ${String(e.details.actualLeaseEpoch)})`
          : `${String(e.details.fromLeaseEpoch ?? "?")} → ${String(e.details.toLeaseEpoch ?? "?")}`])),
    };
  });
}
