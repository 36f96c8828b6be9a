import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { request as httpRequest } from "node:http";
import { request } from "node:https";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { cli, tempRoot, withDeadline, TEST_STORE } from "../helpers.js";
import { reader } from "../process/setup.js";
import { deadTask, startConsole } from "./helpers.js";

const TOKENS = ["--ro-token", "ro1", "--ro-token-next", "ro2", "--rw-token", "rw1", "--rw-token-next", "rw2"];
const bearer = (t: string) => ({ authorization: `Bearer ${t}` });
const post = (url: string, body: unknown, headers: Record<string, string> = {}) =>
  fetch(url, { method: "POST", headers: { "content-type": "application/json", ...headers }, body: JSON.stringify(body) });

test("serve-web: without a token it refuses a non-loopback --bind (exit 2) and is open on loopback", async (t) => {
  const { root, cleanup } = tempRoot();
  t.after(cleanup);
  await cli(["init", "--root", root]);
  const refused = await cli(["serve-web", "--bind", "0.0.0.0", "--port", "0", "--root", root]);
  assert.equal(refused.code, 2);
  assert.match(refused.stderr, /binds loopback only/);
  const web = await startConsole(root);
  t.after(() => web.stop());
  assert.match(web.url, /^http:\/\/127\.0\.0\.1:\d+$/, "binds 127.0.0.1 by default");
  assert.equal((await fetch(`${web.url}/api/tasks`)).status, 200);
  assert.equal((await post(`${web.url}/api/replay-batch`, {})).status, 200, "open console: writes need no token");
  const rebound = await new Promise<number>((resolve, reject) => {
    httpRequest(`${web.url}/api/tasks`, { headers: { host: "evil.example:80" } }, (res) => { res.resume(); resolve(res.statusCode!); }).on("error", reject).end();
  });
  assert.equal(rebound, 403, "an open console refuses non-loopback Host headers (DNS rebinding)");
  assert.equal((await post(`${web.url}/api/replay-batch`, {}, { origin: "http://evil.example" })).status, 403, "and cross-origin writes");
  assert.equal((await web.stop()).code, 0);
});

test("serve-web: tokens, read routes, writes, errors and their audit records", async (t) => {
  const { root, cleanup } = tempRoot();
  t.after(cleanup);
  await cli(["init", "--root", root]);
  const mesh = await reader(root);
  t.after(() => mesh.close());
  const web = await startConsole(root, TOKENS);
  t.after(() => web.stop());
  const u = web.url;

  // Authentication: none or unknown → 401; every configured token (current and next) reads.
  assert.equal((await fetch(`${u}/api/tasks`)).status, 401);
  assert.equal((await fetch(`${u}/api/tasks`, { headers: bearer("nope") })).status, 401);
  assert.equal((await fetch(`${u}/?token=nope`)).status, 401);
  for (const token of ["ro1", "ro2", "rw1", "rw2"]) assert.equal((await fetch(`${u}/api/tasks`, { headers: bearer(token) })).status, 200, token);
  assert.equal((await fetch(`${u}/api/tasks?token=ro2`)).status, 200, "token as a query parameter");

  const { taskId } = await mesh.submitWorkflow({ name: "diamond", steps: [
    { id: "a", agent: "echo", input: 1 }, { id: "b", agent: "echo", dependsOn: ["a"] }, { id: "c", agent: "echo", dependsOn: ["a"] },
    { id: "d", agent: "collect", dependsOn: ["b", "c"] },
  ] });
  const list = await (await fetch(`${u}/api/tasks?status=PENDING&limit=5&offset=0`, { headers: bearer("ro1") })).json() as { tasks: { taskId: string; status: string }[]; total: number };
  assert.deepEqual(list.tasks.map((x) => [x.taskId, x.status]), [[taskId, "PENDING"]]);
  assert.equal(list.total, 1);
  assert.equal((await (await fetch(`${u}/api/tasks?status=SUCCESS`, { headers: bearer("ro1") })).json() as { total: number }).total, 0);
  assert.equal((await fetch(`${u}/api/tasks?status=BOGUS`, { headers: bearer("ro1") })).status, 400);
  assert.equal((await fetch(`${u}/api/tasks?limit=0`, { headers: bearer("ro1") })).status, 400);
  const view = await (await fetch(`${u}/api/tasks/${taskId}`, { headers: bearer("ro1") })).json() as { name: string; steps: { stepId: string }[] };
  assert.equal(view.name, "diamond");
  assert.deepEqual(view.steps.map((s) => s.stepId).sort(), ["a", "b", "c", "d"]);
  const wf = await (await fetch(`${u}/api/workflow/${taskId}`, { headers: bearer("ro1") })).json() as { edges: [string, string][] };
  assert.equal(wf.edges.length, 4);
  const unknown = await fetch(`${u}/api/tasks/nope`, { headers: bearer("ro1") });
  assert.equal(unknown.status, 404);
  assert.match(unknown.headers.get("content-type") ?? "", /application\/json/);
  assert.equal(((await unknown.json()) as { error: { code: string } }).error.code, "RELAYMESH_ERR_NOT_FOUND");
  assert.equal((await fetch(`${u}/api/workflow/nope`, { headers: bearer("ro1") })).status, 404);
  assert.equal((await fetch(`${u}/api/nothing-here`, { headers: bearer("ro1") })).status, 404);
  const metrics = await fetch(`${u}/metrics`, { headers: bearer("ro1") });
  assert.match(metrics.headers.get("content-type") ?? "", /text\/plain/);
  assert.match(await metrics.text(), /^relaymesh_tasks\{status="PENDING"\} 1$/m);
  const page = await fetch(`${u}/?token=ro1`);
  assert.match(page.headers.get("content-type") ?? "", /text\/html/);
  assert.match(page.headers.get("content-security-policy") ?? "", /script-src 'nonce-/);
  assert.match(await page.text(), /<title>RelayMesh console<\/title>/);

  // Authorization of writes: read-only → 403, GET → 405 (no --allow-get-writes).
  assert.equal((await post(`${u}/api/cancel`, { taskId }, bearer("ro1"))).status, 403);
  assert.equal((await post(`${u}/api/cancel`, { taskId }, bearer("ro2"))).status, 403);
  assert.equal((await post(`${u}/api/cancel`, { taskId })).status, 401);
  const viaGet = await fetch(`${u}/api/cancel?taskId=${taskId}`, { headers: bearer("rw1") });
  assert.equal(viaGet.status, 405);
  assert.equal(viaGet.headers.get("allow"), "POST");
  assert.equal((await mesh.getTask(taskId)).status, "PENDING", "refused writes changed nothing");

  // Bad input → 400, unknown task → 404, replay of a task that is not dead → 409.
  assert.equal((await post(`${u}/api/cancel`, {}, bearer("rw1"))).status, 400);
  assert.equal((await post(`${u}/api/cancel`, { taskId, mode: "gentle" }, bearer("rw1"))).status, 400);
  assert.equal((await post(`${u}/api/replay-batch`, { limit: -1 }, bearer("rw1"))).status, 400);
  assert.equal((await fetch(`${u}/api/cancel`, { method: "POST", headers: { ...bearer("rw1"), "content-type": "application/json" }, body: "{nope" })).status, 400);
  assert.equal((await post(`${u}/api/cancel`, { taskId: "nope" }, bearer("rw1"))).status, 404);
  assert.equal((await post(`${u}/api/replay`, { taskId: "nope" }, bearer("rw1"))).status, 404);
  const notDead = await post(`${u}/api/replay?taskId=${taskId}`, {}, bearer("rw2"));
  assert.equal(notDead.status, 409, "taskId may come in the query");
  assert.match(((await notDead.json()) as { error: { message: string } }).error.message, /only DEAD_LETTER tasks can be replayed/);

  // A form-encoded cancel, token in the form, with the origin headers that the audit record keeps.
  const cancelled = await fetch(`${u}/api/cancel`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", "user-agent": "web-test/1", "x-forwarded-for": "203.0.113.9", origin: u, referer: `${u}/?token=rw2` },
    body: new URLSearchParams({ token: "rw2", taskId, mode: "hard", reason: "from the test" }).toString(),
  });
  assert.equal(cancelled.status, 200);
  assert.equal(((await cancelled.json()) as { status: string }).status, "CANCELLED");
  assert.equal((await mesh.getTask(taskId)).status, "CANCELLED");
  const again = await post(`${u}/api/cancel`, { taskId }, bearer("rw1"));
  assert.equal(again.status, 200, "cancelling a cancelled task again is harmless");

  // Replays of a dead letter, one and in batch.
  const dead1 = await deadTask(root);
  const dead2 = await deadTask(root);
  const deadList = await (await fetch(`${u}/api/dead`, { headers: bearer("ro1") })).json() as { tasks: { taskId: string; steps: { status: string }[] }[]; total: number };
  assert.deepEqual(deadList.tasks.map((x) => x.taskId).sort(), [dead1, dead2].sort());
  assert.ok(deadList.tasks.every((x) => x.steps.some((s) => s.status === "DEAD_LETTER")));
  const replayed = await post(`${u}/api/replay`, { taskId: dead1 }, bearer("rw1"));
  assert.equal(replayed.status, 200);
  assert.deepEqual(await replayed.json(), { replayed: [dead1] });
  const batch = await post(`${u}/api/replay-batch`, { status: "DEAD_LETTER", limit: 10 }, bearer("rw1"));
  assert.deepEqual(await batch.json(), { replayed: [dead2] });

  // The audit: every write, refused or done, with its origin; and the engine's own records.
  const audit = async (query: string) =>
    ((await (await fetch(`${u}/api/audit-query?${query}`, { headers: bearer("ro1") })).json()) as { records: { action: string; result: string; actor: string; details: Record<string, unknown>; node_id?: string }[] }).records;
  const writes = await audit(`task-id=${taskId}&action=web.write`);
  const ok = writes.find((r) => r.result === "ok" && r.details.route === "/api/cancel" && r.details.status === 200 && r.details.userAgent === "web-test/1")!;
  assert.ok(ok, JSON.stringify(writes));
  assert.deepEqual(
    [ok.details.method, ok.details.forwardedFor, ok.details.origin, ok.details.referer, ok.details.remoteAddress, ok.details.mode, ok.details.reason],
    ["POST", "203.0.113.9", u, `${u}/?token=rw2`, "127.0.0.1", "hard", "from the test"],
  );
  assert.equal(ok.actor, "web:127.0.0.1");
  // On PostgreSQL the route answers with the cluster-wide records, each with the node that wrote it; the root's file has none.
  assert.ok(writes.every((r) => TEST_STORE === "postgres" ? typeof r.node_id === "string" && r.node_id !== "" : r.node_id === undefined), JSON.stringify(writes[0]));
  const statuses = writes.map((r) => r.details.status).sort();
  assert.deepEqual(statuses, [200, 200, 400, 403, 403, 405, 409].sort(), "the 403s, the 405, the 400 (bad mode) and the 409 are audited as refused");
  assert.ok(writes.filter((r) => r.details.status !== 200).every((r) => r.result === "refused"));
  assert.equal((await audit(`taskId=${taskId}&action=task.cancel`)).length, 1, "the engine's own cancel record is there too");
  assert.equal((await audit(`action=web.write&limit=2`)).length, 2);
  assert.equal((await audit(`action=web.write&from=${Date.now() + 60_000}`)).length, 0);
  assert.equal((await fetch(`${u}/api/audit-query?from=yesterday`, { headers: bearer("ro1") })).status, 400);
  const stats = await (await fetch(`${u}/api/stats`, { headers: bearer("ro1") })).json() as { tasks: Record<string, number>; web: Record<string, number> };
  assert.equal(stats.tasks.CANCELLED, 1);
  assert.equal(stats.web.getWrites, 0);
  assert.equal(stats.web.refused, 3);

  const allWrites = await audit("action=web.write&limit=1000");
  assert.equal((await web.stop()).code, 0, "SIGTERM stops it gracefully");
  // Written by the graceful stop: the root's file on SQLite, the cluster-wide records on PostgreSQL.
  const kept = (await cli(["audit-query", "--root", root, "--action", "web.write", "--json"])).json<{ records: unknown[] }>().records;
  assert.equal(kept.length, allWrites.length);
});

test("serve-web: /events streams task changes as Server-Sent Events", async (t) => {
  const { root, cleanup } = tempRoot();
  t.after(cleanup);
  await cli(["init", "--root", root]);
  const mesh = await reader(root);
  t.after(() => mesh.close());
  const web = await startConsole(root, ["--ro-token", "ro"]);
  t.after(() => web.stop());
  assert.equal((await fetch(`${web.url}/events`)).status, 401);
  const controller = new AbortController();
  t.after(() => controller.abort());
  const res = await fetch(`${web.url}/events?token=ro`, { signal: controller.signal });
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type") ?? "", /text\/event-stream/);
  const reader_ = res.body!.getReader();
  let text = "";
  const readUntil = (pattern: RegExp) => withDeadline((async () => {
    while (!pattern.test(text)) {
      const { value, done } = await reader_.read();
      if (done) throw new Error(`stream ended; got ${text}`);
      text += Buffer.from(value).toString("utf8");
    }
  })(), 10_000, `an event matching ${pattern}`);
  await readUntil(/: connected/);
  const { taskId } = await mesh.submit({ agent: "echo", input: "hi" });
  await readUntil(new RegExp(`event: task\\nid: ${taskId}:\\d+\\ndata: \\{[^\\n]*"status":"PENDING"`));
  await mesh.cancel(taskId);
  await readUntil(new RegExp(`data: \\{"taskId":"${taskId}"[^\\n]*"status":"CANCELLED"`));
  controller.abort();
  assert.equal((await web.stop()).code, 0);
});

test("serve-web: --allow-get-writes counts and audits GET writes; --write-rate-limit-per-min answers 429", async (t) => {
  const { root, cleanup } = tempRoot();
  t.after(cleanup);
  await cli(["init", "--root", root]);
  const web = await startConsole(root, ["--rw-token", "rw", "--allow-get-writes", "--write-rate-limit-per-min", "3"]);
  t.after(() => web.stop());
  const get = await fetch(`${web.url}/api/replay-batch?token=rw`);
  assert.equal(get.status, 200);
  assert.deepEqual(await get.json(), { replayed: [], viaGet: true, getWrites: 1 });
  const stats = await (await fetch(`${web.url}/api/stats?token=rw`)).json() as { web: { getWrites: number; writes: number } };
  assert.deepEqual([stats.web.getWrites, stats.web.writes], [1, 1]);
  assert.match(await (await fetch(`${web.url}/metrics?token=rw`)).text(), /^relaymesh_web_get_writes_total 1$/m);
  assert.equal((await post(`${web.url}/api/replay-batch`, {}, bearer("rw"))).status, 200);
  assert.equal((await post(`${web.url}/api/replay-batch`, {}, bearer("rw"))).status, 200);
  const limited = await post(`${web.url}/api/replay-batch`, {}, bearer("rw"));
  assert.equal(limited.status, 429);
  assert.ok(Number(limited.headers.get("retry-after")) >= 1);
  assert.equal((await fetch(`${web.url}/api/tasks?token=rw`)).status, 200, "reads are not rate-limited");
  const records = ((await (await fetch(`${web.url}/api/audit-query?action=web.write&token=rw`)).json()) as { records: { result: string; details: Record<string, unknown> }[] }).records;
  assert.deepEqual(records.map((r) => [r.details.method, r.details.viaGet, r.details.status, r.result]).reverse(), [
    ["GET", true, 200, "ok"], ["POST", false, 200, "ok"], ["POST", false, 200, "ok"], ["POST", false, 429, "refused"],
  ]);
});

test("serve-web: HTTPS with --tls-key and --tls-cert", async (t) => {
  const { root, cleanup } = tempRoot();
  t.after(cleanup);
  await cli(["init", "--root", root]);
  const key = join(root, "key.pem");
  const cert = join(root, "cert.pem");
  execFileSync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=127.0.0.1",
    "-addext", "subjectAltName=IP:127.0.0.1"], { stdio: "ignore" });
  const half = await cli(["serve-web", "--tls-key", key, "--port", "0", "--root", root]);
  assert.equal(half.code, 2);
  const web = await startConsole(root, ["--ro-token", "ro", "--tls-key", key, "--tls-cert", cert]);
  t.after(() => web.stop());
  assert.match(web.url, /^https:\/\//);
  const body = await new Promise<{ status: number; text: string }>((resolve, reject) => {
    request(`${web.url}/api/tasks`, { headers: bearer("ro"), ca: readFileSync(cert) }, (res) => {
      let text = "";
      res.on("data", (d) => (text += d)).on("end", () => resolve({ status: res.statusCode!, text }));
    }).on("error", reject).end();
  });
  assert.deepEqual([body.status, JSON.parse(body.text)], [200, { tasks: [], total: 0 }]);
  assert.equal((await web.stop()).code, 0);
});
