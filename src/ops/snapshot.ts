import { cpSync, existsSync, readdirSync } from "node:fs";
import { ensureDir } from "./dirs.js";
import { join, resolve } from "node:path";
import { InvalidInputError } from "../errors.js";
import type { Settings } from "../model/settings.js";
import { ensureRoot, type RootPaths } from "../root.js";
import { openStore } from "../store/open.js";
import { SqliteStore } from "../store/sqlite/store.js";
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
 * A consistent copy of a root in a new folder: the store's logical export (one snapshot of
 * either store, while the engine keeps running) loaded into a fresh SQLite file, plus
 * settings, agents and the audit log, and a manifest.
 */
export async function exportSnapshot(store: Store, paths: RootPaths, outDir: string): Promise<{ out: string }> {
  const out = resolve(outDir);
  if (existsSync(out) && readdirSync(out).length > 0) {
    throw new InvalidInputError([{ where: out, message: "snapshot folder exists and is not empty; give a new or empty folder" }]);
  }
  ensureDir(out, "snapshot folder");
  await copyStore(store, await SqliteStore.openMigrated(join(out, DB_FILE)));
  const files = [DB_FILE];
  for (const f of rootFiles(paths)) {
    if (!existsSync(f.from)) continue;
    cpSync(f.from, join(out, f.name), { recursive: true });
    files.push(f.name);
  }
  writeJsonFile(join(out, MANIFEST), { kind: "relaymesh-snapshot", version: 1, createdAtMs: Date.now(), sourceRoot: paths.dir, files });
  return { out };
}

/** Copies every row of `from` into `to` (closed afterwards). */
async function copyStore(from: Store, to: Store): Promise<void> {
  try {
    await from.exportRows(async (page) => { await to.importRows(page); });
  } finally {
    await to.close();
  }
}

/**
 * Restores a snapshot into a store that holds no tasks (the root's own, or `storeUrl`), so
 * nothing is ever overwritten. Throws InvalidInputError for a folder that is not a snapshot or
 * a store in use.
 */
export async function importSnapshot(paths: RootPaths, inDir: string, settings: Settings, storeUrl?: string): Promise<{ in: string }> {
  const from = resolve(inDir);
  if (!existsSync(join(from, MANIFEST)) || !existsSync(join(from, DB_FILE))) {
    throw new InvalidInputError([{ where: from, message: `not a RelayMesh snapshot (no ${MANIFEST} and ${DB_FILE})` }]);
  }
  ensureRoot(paths);
  const target = await openStore(storeUrl, paths.db, settings);
  try {
    const { total } = await target.listTasks({ limit: 1, offset: 0 });
    if (total > 0) {
      throw new InvalidInputError([{ where: storeUrl === undefined ? paths.dir : target.location, message: `store already holds ${total} task(s); import a snapshot into a new or empty root or store` }]);
    }
    const source = await SqliteStore.openMigrated(join(from, DB_FILE));
    try {
      await source.exportRows(async (page) => { await target.importRows(page); });
    } finally {
      await source.close();
    }
  } finally {
    await target.close();
  }
  for (const f of rootFiles(paths)) {
    if (existsSync(join(from, f.name))) cpSync(join(from, f.name), f.from, { recursive: true });
  }
  return { in: from };
}
