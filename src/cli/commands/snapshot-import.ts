import { importSnapshot } from "../../ops/snapshot.js";
import { defaultRoot, readRootConfig, rootPaths } from "../../root.js";
import { ExitCode, ExitError } from "../errors.js";
import type { CommandResult, GlobalOptions } from "../context.js";

/** Restores a snapshot into a new or empty root (SQLite; the store is the root's file). */
export default async function snapshotImport(globals: GlobalOptions, flags: { in: string }): Promise<CommandResult> {
  if (globals.store !== undefined || process.env.RELAYMESH_STORE) {
    throw new ExitError(ExitCode.USAGE, "snapshot-import restores into a root's own SQLite store; omit --store (and RELAYMESH_STORE)");
  }
  const paths = rootPaths(globals.root ?? defaultRoot());
  const result = await importSnapshot(paths, flags.in, readRootConfig(paths).settings);
  return { data: result, human: `snapshot ${result.in} restored into ${paths.dir}` };
}
