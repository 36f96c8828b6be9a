import { test } from "node:test";
import assert from "node:assert/strict";
import { chromium } from "playwright-core";
import { cli, spawnCli, tempRoot, waitUntil } from "../helpers.js";
import { reader } from "../process/setup.js";
import { startConsole } from "./helpers.js";

const CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
  "--disable-component-update", "--disable-sync"];

test("serve-web page: lists a submitted task, opens it, and cancels a running sleep task from the browser", async (t) => {
  const { root, cleanup } = tempRoot();
  // after-hooks run in the order registered: the root goes only once every process using it has stopped.
  const stops: (() => unknown)[] = [];
  t.after(async () => {
    for (const stop of stops.reverse()) await stop();
    cleanup();
  });
  await cli(["init", "--root", root]);
  const mesh = await reader(root);
  stops.push(() => mesh.close());
  const worker = spawnCli(["worker", "--root", root, "--concurrency", "2", "--shutdown-timeout-ms", "1000"]);
  stops.push(async () => { worker.child.kill("SIGTERM"); await worker.exited; });
  const web = await startConsole(root, ["--ro-token", "ro", "--rw-token", "rw"]);
  stops.push(() => web.stop());

  const { taskId } = await mesh.submitWorkflow({ name: "nap <b>&amp;</b>", steps: [{ id: "nap", agent: "sleep", input: { ms: 120_000 } }] });
  await waitUntil(async () => (await mesh.getTask(taskId)).status === "RUNNING", "the sleep task to be RUNNING");

  const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: CHROMIUM_ARGS });
  t.after(() => browser.close());
  const page = await browser.newPage();
  const errors: string[] = [];
  page.on("pageerror", (e) => errors.push(e.message));
  page.on("dialog", (d) => void d.accept());
  await page.goto(`${web.url}/?token=rw`);

  const row = page.locator(`#tasks tr[data-task-id="${taskId}"]`);
  await row.waitFor({ timeout: 15_000 });
  assert.match(await row.innerText(), /nap <b>&amp;<\/b>/, "the name is shown as text, not markup");
  assert.equal(await page.locator("#tasks b").count(), 0);
  await row.click();
  await page.locator("#detail-status", { hasText: "RUNNING" }).waitFor({ timeout: 15_000 });
  await page.locator('#dag g[data-step-id="nap"]').waitFor({ timeout: 15_000 });
  await page.locator("#cancel-btn:not([disabled])").click();
  await page.locator("#detail-status", { hasText: "CANCELLED" }).waitFor({ timeout: 15_000 });
  await row.locator("td", { hasText: "CANCELLED" }).waitFor({ timeout: 15_000 });
  assert.equal((await mesh.getTask(taskId)).status, "CANCELLED");
  const records = await mesh.audit.query({ taskId, action: "web.write" });
  assert.equal(records.length, 1);
  assert.equal(records[0]!.details.userAgent !== null && String(records[0]!.details.userAgent).includes("Chrome"), true);
  assert.deepEqual(errors, []);
});
