import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { ErrorCode, LeaseLostError, RelayMeshError } from "../../src/errors.js";
import type { StepResultMessage } from "../../src/pool/protocol.js";
import { runOneShot } from "../../workers/script-runner.js";
import { SCRIPTS, gone, recordingHooks, request, scriptConfig, until } from "../fixtures/scripts/helpers.js";

const BEHAVE = join(SCRIPTS, "behave.sh");
const limits = { maxPayloadBytes: 64 * 1024, killGraceMs: 300 };

function behave(mode: string, extra: Parameters<typeof scriptConfig>[2] = {}) {
  return scriptConfig(`sh-${mode}`, ["sh", BEHAVE, mode], extra);
}

function error(result: StepResultMessage) {
  assert.equal(result.type, "error", `expected an error, got ${JSON.stringify(result)}`);
  return result as Extract<StepResultMessage, { type: "error" }>;
}

test("runOneShot: exit 0 with one JSON document (whitespace around it) is the result", async () => {
  const { hooks } = recordingHooks();
  const result = await runOneShot(behave("ok"), request(), hooks, limits);
  assert.deepEqual(result, { type: "result", outputJson: JSON.stringify({ ok: true, list: [1, 2] }) });
});

test("runOneShot: stdin carries the request, env the RELAYMESH_* variables and TRACEPARENT", async () => {
  const { hooks } = recordingHooks();
  const config = scriptConfig("node-echo", [process.execPath, join(SCRIPTS, "echo-request.mjs"), "--flag"], { env: { FIXTURE_EXTRA: "yes" } });
  const req = request();
  const result = await runOneShot(config, req, hooks, limits);
  assert.equal(result.type, "result");
  const out = JSON.parse((result as { outputJson: string }).outputJson);
  assert.deepEqual(out.request, req);
  assert.deepEqual(out.env, {
    RELAYMESH_TASK_ID: "task-1", RELAYMESH_STEP_ID: "step-a", RELAYMESH_ATTEMPT: "2", RELAYMESH_CONTROL_FD: "3",
    TRACEPARENT: req.traceparent, FIXTURE_EXTRA: "yes",
  });
  assert.deepEqual(out.argv, ["--flag"]);
});

test("runOneShot: a script that never reads stdin (a large input, EPIPE) still succeeds", async () => {
  const { hooks } = recordingHooks();
  const result = await runOneShot(behave("no-stdin"), request({ input: "x".repeat(1024 * 1024) }), hooks, { ...limits, maxPayloadBytes: 4 * 1024 * 1024 });
  assert.deepEqual(result, { type: "result", outputJson: '{"ok":true}' });
});

test("runOneShot: a non-zero exit records the code and the last 4 KB of stderr, retryable", async () => {
  const { hooks } = recordingHooks();
  const e = error(await runOneShot(behave("exit3"), request(), hooks, limits));
  assert.equal(e.error.code, ErrorCode.AGENT_FAILED);
  assert.equal(e.retryable, true);
  assert.match(e.error.message, /exited with code 3/);
  assert.match(e.error.message, /the last words/);
  const details = e.error.details as { exitCode: number; stderr: string; kind: string };
  assert.equal(details.kind, "exit");
  assert.equal(details.exitCode, 3);
  assert.ok(details.stderr.length <= 4096 && details.stderr.length > 4000, `stderr tail is ${details.stderr.length} bytes`);
  assert.ok(details.stderr.endsWith("the last words\n"));
  assert.doesNotMatch(details.stderr, /noise line 0 /);
});

test("runOneShot: a script killed by a signal records which", async () => {
  const { hooks } = recordingHooks();
  const e = error(await runOneShot(behave("signal"), request(), hooks, limits));
  assert.equal(e.error.code, ErrorCode.AGENT_FAILED);
  assert.match(e.error.message, /killed by signal SIGUSR2/);
  assert.equal((e.error.details as { signal: string }).signal, "SIGUSR2");
});

test("runOneShot: invalid JSON, two documents and no output are failures showing what was read", async () => {
  const { hooks } = recordingHooks();
  const invalid = error(await runOneShot(behave("invalid"), request(), hooks, limits));
  assert.equal(invalid.error.code, ErrorCode.AGENT_FAILED);
  assert.match(invalid.error.message, /invalid JSON on stdout/);
  assert.match(invalid.error.message, /this is \{ not json/);
  const two = error(await runOneShot(behave("two-docs"), request(), hooks, limits));
  assert.match(two.error.message, /invalid JSON on stdout/);
  assert.equal((two.error.details as { stdout: string }).stdout, '{"a":1}\n{"b":2}\n');
  const empty = error(await runOneShot(behave("empty"), request(), hooks, limits));
  assert.match(empty.error.message, /nothing on stdout/);
});

test("runOneShot: invalid output shown is truncated to about 1 KB", async () => {
  const { hooks } = recordingHooks();
  const config = scriptConfig("py-junk", ["python3", "-c", "print('z' * 50000)"]);
  const e = error(await runOneShot(config, request(), hooks, limits));
  const shown = (e.error.details as { stdout: string }).stdout;
  assert.ok(shown.length < 1200, `shown ${shown.length} characters`);
  assert.match(shown, /50001 bytes in all/);
});

test("runOneShot: output over maxPayloadBytes stops reading and kills the script", async () => {
  const { hooks } = recordingHooks();
  const started = Date.now();
  const e = error(await runOneShot(behave("flood"), request(), hooks, { maxPayloadBytes: 10_000, killGraceMs: 300 }));
  assert.equal(e.error.code, ErrorCode.AGENT_FAILED);
  assert.match(e.error.message, /more than maxPayloadBytes \(10000\)/);
  assert.equal((e.error.details as { kind: string }).kind, "output-too-large");
  assert.ok(Date.now() - started < 5_000);
});

test("runOneShot: timeout kills the whole process group, a grandchild that ignores SIGTERM included", async () => {
  const { hooks, seen } = recordingHooks();
  const started = Date.now();
  const e = error(await runOneShot(behave("grandchild", { timeoutMs: 1_000 }), request(), hooks, limits));
  assert.equal(e.error.code, ErrorCode.STEP_TIMEOUT);
  assert.equal(e.retryable, true);
  assert.match(e.error.message, /timed out after 1000 ms/);
  assert.ok(Date.now() - started >= 980);
  const grandchild = Number(seen.progress[0]?.message);
  assert.ok(grandchild > 0, "the script reported its grandchild's pid");
  await until(`grandchild ${grandchild} to be gone`, () => gone(grandchild), 5_000);
});

test("runOneShot: leftovers of a script that exited are killed, and the result does not wait for them", async () => {
  const { hooks, seen } = recordingHooks();
  const started = Date.now();
  const result = await runOneShot(behave("leftover"), request(), hooks, limits);
  assert.deepEqual(result, { type: "result", outputJson: '{"left":"behind"}' });
  assert.ok(Date.now() - started < 5_000);
  const leftover = Number(seen.progress[0]?.message);
  await until(`leftover ${leftover} to be gone`, () => gone(leftover), 5_000);
});

test("runOneShot: exit code 78 and fatal on fd 3 are not retryable", async () => {
  const { hooks } = recordingHooks();
  const exit78 = error(await runOneShot(behave("exit78"), request(), hooks, limits));
  assert.equal(exit78.error.code, ErrorCode.NON_RETRYABLE);
  assert.equal(exit78.retryable, false);
  assert.match(exit78.error.message, /bad configuration/);
  const fatal = error(await runOneShot(behave("fatal"), request(), hooks, limits));
  assert.equal(fatal.error.code, ErrorCode.NON_RETRYABLE);
  assert.equal(fatal.retryable, false);
  assert.match(fatal.error.message, /input is unusable/);
});

test("runOneShot: retry-later on fd 3 sets retryDelayMs", async () => {
  const { hooks } = recordingHooks();
  const e = error(await runOneShot(behave("retry-later"), request(), hooks, limits));
  assert.equal(e.error.code, ErrorCode.RETRY_LATER);
  assert.equal(e.retryable, true);
  assert.equal(e.retryDelayMs, 1234);
  assert.match(e.error.message, /upstream busy/);
});

test("runOneShot: checkpoints apply in order, one at a time, before the result; heartbeat and progress arrive; junk is ignored", async () => {
  const log: string[] = [];
  let resolved = false;
  const { hooks, seen } = recordingHooks(async (key, value) => {
    log.push(`start ${key}=${String(value)}`);
    // A slow store: the result must still wait for every write.
    await new Promise((resolve) => setTimeout(resolve, 60));
    assert.equal(resolved, false);
    log.push(`end ${key}=${String(value)}`);
  });
  const result = await runOneShot(behave("checkpoints"), request(), hooks, limits);
  resolved = true;
  assert.deepEqual(result, { type: "result", outputJson: '{"done":3}' });
  assert.deepEqual(log, ["start i=1", "end i=1", "start i=2", "end i=2", "start i=3", "end i=3"]);
  assert.deepEqual(seen.checkpoints.map((c) => c.value), [1, 2, 3]);
  assert.equal(seen.heartbeats, 1);
  assert.deepEqual(seen.progress, [{ pct: 50, message: "half way" }]);
});

test("runOneShot: a checkpoint refused with LEASE_LOST kills the script and fails with that error", async () => {
  const { hooks, seen } = recordingHooks(async () => {
    throw new LeaseLostError("step step-a: lease epoch 3 is no longer current");
  });
  const started = Date.now();
  const e = error(await runOneShot(behave("checkpoint-then-hang"), request(), hooks, limits));
  assert.equal(e.error.code, ErrorCode.LEASE_LOST);
  assert.match(e.error.message, /no longer current/);
  assert.ok(Date.now() - started < 5_000);
  const pid = Number(seen.progress[0]?.message);
  await until(`script ${pid} to be gone`, () => gone(pid), 5_000);
});

test("runOneShot: abort kills the process group and fails with the abort reason", async () => {
  const { hooks, seen, controller } = recordingHooks();
  const running = runOneShot(behave("grandchild"), request(), hooks, limits);
  await until("the script to report its grandchild", () => seen.progress.length > 0);
  controller.abort(new RelayMeshError(ErrorCode.ABORTED, "task task-1 was cancelled (hard)"));
  const e = error(await running);
  assert.equal(e.error.code, ErrorCode.ABORTED);
  assert.match(e.error.message, /cancelled \(hard\)/);
  const grandchild = Number(seen.progress[0]!.message);
  await until(`grandchild ${grandchild} to be gone`, () => gone(grandchild), 5_000);
});

test("runOneShot: an already aborted signal spawns nothing", async () => {
  const { hooks, controller } = recordingHooks();
  controller.abort(new RelayMeshError(ErrorCode.ABORTED, "engine is closing"));
  const e = error(await runOneShot(behave("ok"), request(), hooks, limits));
  assert.equal(e.error.message, "engine is closing");
});

test("runOneShot: a missing program is a precise failure", async () => {
  const { hooks } = recordingHooks();
  const e = error(await runOneShot(scriptConfig("missing", ["/nonexistent/relaymesh-agent"]), request(), hooks, limits));
  assert.equal(e.error.code, ErrorCode.AGENT_FAILED);
  assert.match(e.error.message, /could not start \/nonexistent\/relaymesh-agent: .*ENOENT/);
});
