import { importSnapshot } from "../../ops/snapshot.js";
import { defaultRoot, readRootConfig, rootPaths } from "../../root.js";
import type { CommandResult, GlobalOptions } from "../context.js";

/** Restores a snapshot into a new or empty root and store (the root's SQLite file, or --store). */
export default async function snapshotImport(globals: GlobalOptions, flags: { in: string }): Promise<CommandResult> {
  const paths = rootPaths(globals.root ?? defaultRoot());
  const result = await importSnapshot(paths, flags.in, readRootConfig(paths).settings, globals.store ?? (process.env.RELAYMESH_STORE || undefined));
  return { data: result, human: `snapshot ${result.in} restored into ${paths.dir}` };
}
