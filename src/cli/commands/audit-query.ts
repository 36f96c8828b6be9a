import { ExitCode, ExitError } from "../errors.js";
import { intOption, withMesh, type CommandResult, type GlobalOptions } from "../context.js";

export interface AuditQueryFlags {
  taskId?: string;
  action?: string;
  from?: string;
  to?: string;
  limit?: string;
}

/** A time bound: ms since the epoch, or an ISO-8601 date/time. */
function timeOption(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const ms = /^\d+$/.test(value) ? Number(value) : Date.parse(value);
  if (!Number.isFinite(ms)) throw new ExitError(ExitCode.USAGE, `--${name}: expected ms since the epoch or an ISO-8601 time, got "${value}"`);
  return ms;
}

export default async function auditQuery(globals: GlobalOptions, flags: AuditQueryFlags): Promise<CommandResult> {
  const query = {
    ...(flags.taskId !== undefined ? { taskId: flags.taskId } : {}),
    ...(flags.action !== undefined ? { action: flags.action } : {}),
    ...(flags.from !== undefined ? { fromMs: timeOption("from", flags.from)! } : {}),
    ...(flags.to !== undefined ? { toMs: timeOption("to", flags.to)! } : {}),
    limit: intOption("limit", flags.limit, { min: 1, max: 100_000 }) ?? 100,
  };
  return withMesh(globals, { work: false }, async (mesh) => {
    const records = await mesh.audit.query(query);
    return { data: { records }, human: records.map((r) => JSON.stringify(r)).join("\n") };
  });
}
