import { withMesh, type CommandResult, type GlobalOptions } from "../context.js";

export default async function metrics(globals: GlobalOptions): Promise<CommandResult> {
  return withMesh(globals, { work: false }, async (mesh) => {
    const { text } = await mesh.metrics();
    return { data: { metrics: text }, human: text.trimEnd() };
  });
}
