import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { closeSync, cpSync, mkdirSync, openSync, readSync, rmSync, statSync, writeSync } from "node:fs";
import { join } from "node:path";
import { RelayMesh } from "../../src/index.js";
import { cli, tempRoot } from "../helpers.js";

interface Health { ok: boolean; checks: { name: string; ok: boolean; detail: string }[] }
const check = (h: Health, name: string) => h.checks.find((c) => c.name === name);

test("health: a corrupted copy of a store fails its integrity check (exit 1) while the original stays healthy", async (t) => {
  const { root, cleanup } = tempRoot();
  t.after(cleanup);
  const original = join(root, "original");
  const mesh = await RelayMesh.open({ root: original, work: false });
  for (let i = 0; i < 300; i++) await mesh.submit({ agent: "echo", input: { i, pad: "x".repeat(200) } });
  await mesh.close();
  const copy = join(root, "copy");
  cpSync(original, copy, { recursive: true });
  const db = join(copy, "relaymesh.db");
  const size = statSync(db).size;
  assert.ok(size > 64 * 1024, `store of ${size} bytes`);
  // Garbage over several pages in the middle of the file (page 1, the header, is left alone).
  const fd = openSync(db, "r+");
  const garbage = Buffer.alloc(16 * 1024, 0xa5);
  writeSync(fd, garbage, 0, garbage.length, Math.floor(size / 2 / 4096) * 4096);
  const header = Buffer.alloc(16);
  readSync(fd, header, 0, 16, 0);
  closeSync(fd);
  assert.equal(header.toString("latin1"), "SQLite format 3\u0000");

  const sick = await cli(["health", "--root", copy, "--json"]);
  assert.equal(sick.code, 1, sick.stdout);
  const h = sick.json<Health>();
  assert.equal(h.ok, false);
  assert.equal(check(h, "store-integrity")?.ok, false, JSON.stringify(h));
  const well = await cli(["health", "--root", original, "--json"]);
  assert.equal(well.code, 0, well.stdout);
  assert.equal(check(well.json<Health>(), "store-integrity")?.ok, true);
});

test("health: on a full file system the write probe fails, submits fail with SQLITE_FULL counted in the metrics, and work resumes once there is room", async (t) => {
  const { root, cleanup } = tempRoot();
  const mount = join(root, "small");
  mkdirSync(mount);
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=4m", "tmpfs", mount], { stdio: "pipe" });
  } catch (error) {
    cleanup();
    t.skip(`cannot mount a small tmpfs here (${(error as Error).message.split("\n")[0]}): the full-disk case is not tested`);
    return;
  }
  const dataRoot = join(mount, "root");
  const mesh = await RelayMesh.open({ root: dataRoot, work: false });
  let closed = false;
  // In this order: the engine, the mount, the folder.
  t.after(async () => {
    if (!closed) await mesh.close({ force: true }).catch(() => {});
    execFileSync("umount", ["-l", mount]);
    cleanup();
  });
  const kept = await mesh.submit({ agent: "echo", input: "before" });
  const filler = join(mount, "filler");
  try {
    execFileSync("dd", ["if=/dev/zero", `of=${filler}`, "bs=4k"], { stdio: "ignore" });
  } catch { /* dd stops with ENOSPC: the disk is full now */ }

  let refused = 0;
  for (let i = 0; i < 20 && refused === 0; i++) {
    try {
      await mesh.submit({ agent: "echo", input: { i, pad: "y".repeat(64 * 1024) } });
    } catch (error) {
      assert.equal((error as { code?: string }).code, "RELAYMESH_ERR_STORE");
      refused++;
    }
  }
  assert.equal(refused, 1, "a submit fails while the disk is full");
  const sick = await mesh.health();
  assert.equal(sick.ok, false);
  assert.equal(sick.checks.find((c) => c.name === "store-disk")?.ok, false, JSON.stringify(sick.checks));
  const { text } = await mesh.metrics();
  assert.match(text, /^relaymesh_store_errors_total\{operation="commit",code="SQLITE_FULL"\} [1-9]/m);

  rmSync(filler);
  const after = await mesh.submit({ agent: "echo", input: "after" });
  assert.equal((await mesh.health()).ok, true);
  await mesh.close();
  closed = true;
  // Nothing acknowledged was lost, and the failures were written down for every process to see.
  const tasks = (await cli(["tasks", "--root", dataRoot, "--json"])).json<{ tasks: { taskId: string }[] }>().tasks.map((x) => x.taskId);
  assert.ok(tasks.includes(kept.taskId) && tasks.includes(after.taskId));
  assert.match((await cli(["metrics", "--root", dataRoot])).stdout, /^relaymesh_store_errors_total\{operation="commit",code="SQLITE_FULL"\} [1-9]/m);
});
