import { numberOption, withMesh, type CommandResult, type GlobalOptions } from "../context.js";

export interface PurgeFlags {
  doneRetentionDays?: string;
  deadRetentionDays?: string;
  idempotencyTtlDays?: string;
}

export default async function purge(globals: GlobalOptions, flags: PurgeFlags): Promise<CommandResult> {
  const options = {
    doneRetentionDays: numberOption("done-retention-days", flags.doneRetentionDays) ?? 7,
    deadRetentionDays: numberOption("dead-retention-days", flags.deadRetentionDays) ?? 30,
    idempotencyTtlDays: numberOption("idempotency-ttl-days", flags.idempotencyTtlDays) ?? 7,
  };
  return withMesh(globals, { work: false }, async (mesh) => {
    const result = await mesh.purge(options);
    return {
      data: result,
      human: `purged ${result.finishedTasks} finished task(s), ${result.deadLetters} dead letter(s); forgot ${result.idempotencyKeys} idempotency key(s)`,
    };
  });
}
