import { intOption, withMesh, type CommandResult, type GlobalOptions } from "../context.js";

export default async function settingsHistory(globals: GlobalOptions, flags: { limit?: string }): Promise<CommandResult> {
  const limit = intOption("limit", flags.limit, { min: 1, max: 10_000 }) ?? 20;
  return withMesh(globals, { work: false }, async (mesh) => {
    const records = await mesh.audit.query({ action: "settings.reload", limit });
    const history = records.map((r) => ({
      atMs: Date.parse(r.timestamp), timestamp: r.timestamp, actor: r.actor, result: r.result,
      changedFields: (r.details.changedFields as string[] | undefined) ?? [], error: r.details.error ?? null,
    }));
    return { data: { history }, human: history.map((h) => `${h.timestamp} ${h.actor} ${h.result} ${h.changedFields.join(", ")}`).join("\n") };
  });
}
