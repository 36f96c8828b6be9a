import { test } from "node:test";
import assert from "node:assert/strict";
import { cli, tempRoot } from "../helpers.js";
import { reader } from "../process/setup.js";
import { startConsole } from "./helpers.js";

test("serve-web: /api/schedules lists schedules; a task's steps say why they wait; the page shows both", async (t) => {
  const { root, cleanup } = tempRoot();
  t.after(cleanup);
  await cli(["init", "--root", root]);
  const mesh = await reader(root);
  t.after(() => mesh.close());
  await mesh.addSchedule({ name: "nightly", cron: "0 3 * * *", timezone: "Europe/Paris", workflow: { steps: [{ id: "a", agent: "echo" }] } });
  const { taskId } = await mesh.submit({ agent: "echo", input: 1 }, { delayMs: 3_600_000 });
  const deduped = { dedupe: { key: "sync-1", windowMs: 60_000 }, steps: [{ id: "a", agent: "echo" }] };
  const first = await mesh.submitWorkflow(deduped);
  assert.equal((await mesh.submitWorkflow(deduped)).taskId, first.taskId);
  const web = await startConsole(root);
  t.after(() => web.stop());

  const { schedules } = await (await fetch(`${web.url}/api/schedules`)).json() as { schedules: { name: string; cron: string; timezone: string; nextAtMs: number; paused: boolean }[] };
  assert.deepEqual(schedules.map((s) => [s.name, s.cron, s.timezone, s.paused]), [["nightly", "0 3 * * *", "Europe/Paris", false]]);
  assert.ok(schedules[0]!.nextAtMs > Date.now());
  const task = await (await fetch(`${web.url}/api/tasks/${taskId}`)).json() as { steps: { status: string; waitingFor: string; waitingUntilMs: number }[] };
  assert.equal(task.steps[0]!.status, "SCHEDULED");
  assert.match(task.steps[0]!.waitingFor, /^scheduled until \d{4}-/);
  assert.ok(task.steps[0]!.waitingUntilMs > Date.now());
  const page = await (await fetch(`${web.url}/`)).text();
  assert.match(page, /<h2>Schedules<\/h2>/);
  assert.match(page, /Waiting for/);
  const stats = await (await fetch(`${web.url}/api/stats`)).json() as { steps: Record<string, number>; flow: { scheduledSteps: number; schedules: number; deduplicated: unknown } };
  assert.equal(stats.steps.SCHEDULED, 1);
  assert.equal(stats.flow.scheduledSteps, 1);
  assert.equal(stats.flow.schedules, 1);
  assert.deepEqual(stats.flow.deduplicated, { dropped: 1, replaced: 0 });
  assert.match((await cli(["metrics", "--root", root])).stdout, /relaymesh_dedupe_total\{outcome="dropped"\} 1/);
  assert.equal((await web.stop()).code, 0);
});
