import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { RelayMesh } from "../../src/index.js";
import { cli, spawnCli, tempRoot, waitUntil, writeSettings, REPO } from "../helpers.js";
import { pgSchemaUrl, skipPg } from "../store/pg.js";

const BASE = { leaseTimeoutMs: 3_000, suspectAfterMs: 1_500, deadAfterMs: 4_000 };

test("cluster-wide settings on PostgreSQL: reload-settings on node A changes node B's lease timeout within a tick, recorded once; a root whose file disagrees fails health naming the fields", { skip: skipPg }, async (t) => {
  const pg = pgSchemaUrl();
  t.after(() => pg.drop());
  const [A, B, C] = [tempRoot(), tempRoot(), tempRoot()];
  for (const r of [A, B, C]) t.after(r.cleanup);
  for (const r of [A, B]) writeSettings(r.root, BASE);
  writeSettings(C.root, { ...BASE, leaseTimeoutMs: 5_000, maxAttempts: 7 });
  mkdirSync(join(B.root, "agents"), { recursive: true });
  writeFileSync(join(B.root, "agents", "modules.json"), JSON.stringify({ agents: [{ id: "awaitFile", module: join(REPO, "test/fixtures/agents/gate.mjs"), export: "awaitFile" }] }));

  const wa = spawnCli(["worker", "--root", A.root, "--store", pg.url, "--node-id", "node-a"]);
  t.after(() => { wa.child.kill("SIGKILL"); });
  await waitUntil(async () => (await cli(["members", "--root", A.root, "--store", pg.url, "--json"])).json<{ members: unknown[] }>().members.length === 1, "node-a to start");
  const wb = spawnCli(["worker", "--root", B.root, "--store", pg.url, "--node-id", "node-b"]);
  t.after(() => { wb.child.kill("SIGKILL"); });
  const mesh = await RelayMesh.open({ root: B.root, store: pg.url, work: false });
  t.after(() => mesh.close());
  const open = join(B.root, "open");
  const { taskId } = await mesh.submit({ agent: "awaitFile", input: { file: open } });
  const leaseLeft = async () => {
    const s = (await mesh.getTask(taskId)).steps[0]!;
    return s.status === "RUNNING" && s.leaseExpiresAtMs !== null ? s.leaseExpiresAtMs - mesh.store.now() : null;
  };
  const before = await waitUntil(leaseLeft, "node-b to run the step");
  assert.ok(before <= BASE.leaseTimeoutMs + 200, `lease of ${BASE.leaseTimeoutMs} ms at first, ${before} ms left`);

  writeSettings(A.root, { ...BASE, leaseTimeoutMs: 9_000 });
  const reload = await cli(["reload-settings", "--root", A.root, "--store", pg.url, "--json"]);
  assert.equal(reload.code, 0, reload.stderr);
  assert.deepEqual(reload.json(), { changedFields: ["leaseTimeoutMs"] });
  const reloadedAt = Date.now();
  // Node B applies it at its next maintenance tick; its next renewal then holds the lease for 9 s.
  await waitUntil(async () => ((await leaseLeft()) ?? 0) > 5_000, "node-b to renew under the new lease timeout", 10_000);
  process.stderr.write(`cluster settings: node-b renewed under the new lease timeout ${Date.now() - reloadedAt} ms after reload-settings on node-a\n`);
  const history = (await cli(["settings-history", "--root", C.root, "--store", pg.url, "--json"])).json<{ history: { changedFields: string[]; actor: string }[] }>().history;
  assert.equal(history.filter((h) => h.changedFields.includes("leaseTimeoutMs")).length, 1, `recorded once: ${JSON.stringify(history)}`);
  await waitUntil(async () => (await mesh.audit.query({ action: "settings.apply" })).some((r) => r.actor === "node:node-b"), "node-b to note the change in its audit log");

  const health = await cli(["health", "--root", C.root, "--store", pg.url, "--json"]);
  assert.equal(health.code, 1);
  const check = health.json<{ ok: boolean; checks: { name: string; ok: boolean; detail: string }[] }>().checks.find((c) => c.name === "cluster-settings")!;
  assert.equal(check.ok, false);
  assert.match(check.detail, /disagrees with the cluster's settings on leaseTimeoutMs, maxAttempts/);
  const healthA = (await cli(["health", "--root", A.root, "--store", pg.url, "--json"])).json<{ checks: { name: string; ok: boolean }[] }>();
  assert.equal(healthA.checks.find((c) => c.name === "cluster-settings")!.ok, true);

  writeFileSync(open, "");
  assert.equal((await mesh.waitFor(taskId, { timeoutMs: 20_000 })).status, "SUCCESS");
  wa.child.kill("SIGTERM");
  wb.child.kill("SIGTERM");
  await Promise.all([wa.exited, wb.exited]);
});
