import { intOption, withMesh, type CommandResult, type GlobalOptions } from "../context.js";

export default async function auditTail(globals: GlobalOptions, flags: { lines?: string }): Promise<CommandResult> {
  const lines = intOption("lines", flags.lines, { min: 1, max: 100_000 }) ?? 20;
  return withMesh(globals, { work: false }, async (mesh) => {
    const records = await mesh.audit.tail(lines);
    return { data: { records }, human: records.map((r) => JSON.stringify(r)).join("\n") };
  });
}
