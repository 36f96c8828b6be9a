import { renameSync, writeFileSync } from "node:fs";
import { ensureDir, fileError } from "./dirs.js";
import { dirname, resolve } from "node:path";
import type { AuditTrail } from "../observe/audit-trail.js";
import { taskView, workflowView } from "../model/views.js";
import type { Store } from "../store/store.js";

/** Writes a JSON document atomically (temp file + rename), creating the folder. */
export function writeJsonFile(path: string, doc: unknown): string {
  const out = resolve(path);
  ensureDir(dirname(out), "output folder");
  const tmp = `${out}.${process.pid}.tmp`;
  try {
    writeFileSync(tmp, `${JSON.stringify(doc, null, 2)}\n`);
    renameSync(tmp, out);
  } catch (cause) {
    throw fileError("cannot write", out, cause);
  }
  return out;
}

/** Dead-lettered tasks, newest first, with their steps and errors. */
export async function exportDeadLetters(store: Store, outPath: string, limit: number): Promise<{ out: string; count: number }> {
  const { tasks } = await store.listTasks({ status: "DEAD_LETTER", limit, offset: 0 });
  const full = [];
  for (const t of tasks) {
    const task = await store.getTask(t.taskId);
    if (task) full.push(taskView(task));
  }
  const out = writeJsonFile(outPath, { exportedAtMs: Date.now(), kind: "dead-letters", count: full.length, tasks: full });
  return { out, count: full.length };
}

/** One task: the task, its workflow (steps and edges) and its audit records. */
export async function exportTask(store: Store, audit: Pick<AuditTrail, "query">, taskId: string, outPath: string): Promise<{ out: string; count: number; auditRecords: number } | null> {
  const task = await store.getTask(taskId);
  if (!task) return null;
  const records = (await audit.query({ taskId, limit: 100_000 })).reverse();
  const out = writeJsonFile(outPath, {
    exportedAtMs: Date.now(), kind: "task", task: taskView(task), workflow: workflowView(task), audit: records,
  });
  return { out, count: 1, auditRecords: records.length };
}
