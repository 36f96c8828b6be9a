import { intOption, withMesh, type CommandResult, type GlobalOptions } from "../context.js";

export default async function settingsHistory(globals: GlobalOptions, flags: { limit?: string }): Promise<CommandResult> {
  const limit = intOption("limit", flags.limit, { min: 1, max: 10_000 }) ?? 20;
  return withMesh(globals, { work: false }, async (mesh) => {
    const history = (await mesh.settingsHistory(limit)).map((h) => ({
      atMs: h.atMs, timestamp: new Date(h.atMs).toISOString(), actor: h.actor, nodeId: h.nodeId, result: h.result,
      changedFields: h.changedFields, error: h.error,
    }));
    return { data: { history }, human: history.map((h) => `${h.timestamp} ${h.actor} ${h.result} ${h.changedFields.join(", ")}`).join("\n") };
  });
}
