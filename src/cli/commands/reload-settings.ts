import { withMesh, type CommandResult, type GlobalOptions } from "../context.js";

/**
 * Validates the settings file and records the change. Running workers pick changes up with
 * `worker --settings-reload-ms`; this command reports which fields changed against the last
 * recorded settings, so it can be used to check a file before workers reload it.
 */
export default async function reloadSettings(globals: GlobalOptions): Promise<CommandResult> {
  return withMesh(globals, { work: false }, async (mesh) => {
    const result = await mesh.recordSettings();
    return { data: result, human: result.changedFields.length ? `changed: ${result.changedFields.join(", ")}` : "no field changed" };
  });
}
