import { cpSync, existsSync, readdirSync, rmSync } from "node:fs";
import { ensureDir } from "./dirs.js";
import { join, resolve } from "node:path";
import { InvalidInputError } from "../errors.js";
import type { Settings } from "../model/settings.js";
import { ensureRoot, type RootPaths } from "../root.js";
import { openStore } from "../store/open.js";
import type { Store } from "../store/store.js";
import { writeJsonFile } from "./exports.js";

const MANIFEST = "snapshot.json";
const DB_FILE = "relaymesh.db";

/** The root's files that travel with a snapshot besides the store. */
function rootFiles(paths: RootPaths): { from: string; name: string }[] {
  return [
    { from: paths.settings, name: "relaymesh-settings.json" },
    { from: paths.agentsDir, name: "agents" },
    { from: paths.auditDir, name: "audit" },
  ];
}

/**
 * A consistent copy of a root in a new folder: the store through SQLite's online backup (the
 * engine keeps running), plus settings, agents and the audit log, and a manifest.
 */
export async function exportSnapshot(store: Store, paths: RootPaths, outDir: string): Promise<{ out: string }> {
  const out = resolve(outDir);
  if (existsSync(out) && readdirSync(out).length > 0) {
    throw new InvalidInputError([{ where: out, message: "snapshot folder exists and is not empty; give a new or empty folder" }]);
  }
  ensureDir(out, "snapshot folder");
  await store.backupTo(join(out, DB_FILE));
  const files = [DB_FILE];
  for (const f of rootFiles(paths)) {
    if (!existsSync(f.from)) continue;
    cpSync(f.from, join(out, f.name), { recursive: true });
    files.push(f.name);
  }
  writeJsonFile(join(out, MANIFEST), { kind: "relaymesh-snapshot", version: 1, createdAtMs: Date.now(), sourceRoot: paths.dir, files });
  return { out };
}

/**
 * Restores a snapshot into a root that holds no tasks (missing or fresh), so nothing is ever
 * overwritten. Throws InvalidInputError for a folder that is not a snapshot or a root in use.
 */
export async function importSnapshot(paths: RootPaths, inDir: string, settings: Settings): Promise<{ in: string }> {
  const from = resolve(inDir);
  if (!existsSync(join(from, MANIFEST)) || !existsSync(join(from, DB_FILE))) {
    throw new InvalidInputError([{ where: from, message: `not a RelayMesh snapshot (no ${MANIFEST} and ${DB_FILE})` }]);
  }
  if (existsSync(paths.db)) {
    const store = await openStore(undefined, paths.db, settings);
    const { total } = await store.listTasks({ limit: 1, offset: 0 }).finally(() => store.close());
    if (total > 0) {
      throw new InvalidInputError([{ where: paths.dir, message: `root already holds ${total} task(s); import a snapshot into a new or empty root` }]);
    }
    for (const suffix of ["", "-wal", "-shm"]) rmSync(`${paths.db}${suffix}`, { force: true });
  }
  ensureRoot(paths);
  cpSync(join(from, DB_FILE), paths.db);
  for (const f of rootFiles(paths)) {
    if (existsSync(join(from, f.name))) cpSync(join(from, f.name), f.from, { recursive: true });
  }
  return { in: from };
}
