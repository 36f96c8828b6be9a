import { withMesh, type CommandResult, type GlobalOptions } from "../context.js";

export default async function init(globals: GlobalOptions): Promise<CommandResult> {
  return withMesh(globals, { work: false }, async (mesh) => ({
    data: { root: mesh.root, store: mesh.store.location },
    human: `root ${mesh.root} is ready (store ${mesh.store.location})`,
  }));
}
