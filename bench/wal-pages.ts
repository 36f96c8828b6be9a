/**
 * WAL pages written per committed step (`npm run bench:wal`): runs workloads on a fresh SQLite
 * root while a second connection holds a read transaction open, so no checkpoint can restart the
 * WAL and every frame the engine writes stays in the file; then reads the frame headers.
 *
 *   npm run bench:wal -- [--tasks N]
 */
import Database from "better-sqlite3";
import { closeSync, mkdtempSync, openSync, readSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { runBenchmark, type BenchmarkShape } from "../src/bench/runner.js";

interface WalFigures { frames: number; commits: number; distinctPages: number; pageSize: number; framesByPage: Map<number, number> }

/** Counts the frames and commit frames of a WAL file (header 32 bytes; each frame: 24-byte header + one page). */
function readWal(path: string): WalFigures {
  const fd = openSync(path, "r");
  try {
    const header = Buffer.alloc(32);
    readSync(fd, header, 0, 32, 0);
    const pageSize = header.readUInt32BE(8);
    const size = statSync(path).size;
    const salt1 = header.readUInt32BE(16);
    const salt2 = header.readUInt32BE(20);
    const frameHeader = Buffer.alloc(24);
    const framesByPage = new Map<number, number>();
    let frames = 0;
    let commits = 0;
    for (let at = 32; at + 24 + pageSize <= size; at += 24 + pageSize) {
      readSync(fd, frameHeader, 0, 24, at);
      // Frames left from before the WAL was last restarted carry other salts: not part of this run.
      if (frameHeader.readUInt32BE(8) !== salt1 || frameHeader.readUInt32BE(12) !== salt2) break;
      frames++;
      const page = frameHeader.readUInt32BE(0);
      framesByPage.set(page, (framesByPage.get(page) ?? 0) + 1);
      if (frameHeader.readUInt32BE(4) !== 0) commits++;
    }
    return { frames, commits, distinctPages: framesByPage.size, pageSize, framesByPage };
  } finally {
    closeSync(fd);
  }
}

/** Frames per step by table or index, from the dbstat page map of the store as it is now. */
function byBtree(db: Database.Database, wal: WalFigures, steps: number): Record<string, number> {
  const owner = new Map((db.prepare("SELECT pageno, name FROM dbstat").all() as { pageno: number; name: string }[]).map((r) => [r.pageno, r.name]));
  const out: Record<string, number> = {};
  for (const [page, n] of wal.framesByPage) {
    const name = owner.get(page) ?? "(free or new)";
    out[name] = (out[name] ?? 0) + n / steps;
  }
  return Object.fromEntries(Object.entries(out).sort((a, b) => b[1] - a[1]).map(([k, v]) => [k, Number(v.toFixed(3))]));
}

async function measure(shape: BenchmarkShape, tasks: number): Promise<Record<string, number | string>> {
  const root = mkdtempSync(join(tmpdir(), "relaymesh-wal-"));
  try {
    // Create the store and apply migrations first, so their pages are not counted.
    await runBenchmark({ root, tasks: 1, shape: "single", mode: "concurrent" });
    const pin = new Database(join(root, "relaymesh.db"), { readonly: true });
    pin.pragma("wal_checkpoint(TRUNCATE)");
    pin.prepare("BEGIN").run();
    pin.prepare("SELECT count(*) FROM sqlite_master").get();
    let report;
    let wal: WalFigures;
    let breakdown: Record<string, number>;
    try {
      report = await runBenchmark({ root, tasks, shape, mode: "enqueue-then-drain", durability: "full" });
      pin.prepare("COMMIT").run();
      wal = readWal(join(root, "relaymesh.db-wal"));
      breakdown = byBtree(pin, wal, report.tasks * report.stepsPerTask);
    } finally {
      if (pin.inTransaction) pin.prepare("COMMIT").run();
      pin.close();
    }
    const steps = report.tasks * report.stepsPerTask;
    breakdowns.set(shape, breakdown);
    return {
      shape, tasks, steps, commits: wal.commits, frames: wal.frames, distinctPages: wal.distinctPages,
      framesPerStep: wal.frames / steps, framesPerCommit: wal.frames / wal.commits, stepsPerCommit: steps / wal.commits,
      walMbPerThousandSteps: (wal.frames * (wal.pageSize + 24)) / 2 ** 20 / (steps / 1000),
    };
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

const breakdowns = new Map<string, Record<string, number>>();

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { tasks: { type: "string", default: "5000" } }, strict: true });
  const tasks = Number(values.tasks);
  if (!Number.isSafeInteger(tasks) || tasks < 1) throw new Error(`--tasks: expected a positive integer, got "${values.tasks}"`);
  const rows = [await measure("single", tasks), await measure("chain", Math.ceil(tasks / 3)), await measure("diamond", Math.ceil(tasks / 4))];
  console.log("WAL frames (pages) written while enqueuing and draining, durability full (submit commits included)");
  console.log("frames per step by table or index (pages of the store after the run; a page may have changed owner during it):");
  const names = [...new Set([...breakdowns.values()].flatMap((b) => Object.keys(b)))];
  console.table(Object.fromEntries(names.map((n) => [n, Object.fromEntries([...breakdowns].map(([shape, b]) => [shape, b[n] ?? 0]))])));
  console.table(rows.map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, typeof v === "number" && !Number.isInteger(v) ? Number(v.toFixed(2)) : v]))));
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.stack : error);
  process.exitCode = 1;
});
