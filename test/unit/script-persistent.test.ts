import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { PersistentScriptAgent } from "../../src/agents/persistent.js";
import { ErrorCode, RelayMeshError } from "../../src/errors.js";
import type { StepResultMessage } from "../../src/pool/protocol.js";
import { SCRIPTS, gone, recordingHooks, request, scriptConfig, until } from "../fixtures/scripts/helpers.js";

const options = { maxPayloadBytes: 64 * 1024, killGraceMs: 300, restartBackoffMs: { base: 20, max: 200 } };

function agent(instances: number, timeoutMs = 10_000): PersistentScriptAgent {
  const config = scriptConfig("node-persistent", [process.execPath, join(SCRIPTS, "persistent.mjs")], { mode: "persistent", instances, timeoutMs });
  return new PersistentScriptAgent(config, options);
}

function output(result: StepResultMessage): any {
  assert.equal(result.type, "result", `expected a result, got ${JSON.stringify(result)}`);
  return JSON.parse((result as { outputJson: string }).outputJson);
}

function error(result: StepResultMessage) {
  assert.equal(result.type, "error", `expected an error, got ${JSON.stringify(result)}`);
  return result as Extract<StepResultMessage, { type: "error" }>;
}

function run(a: PersistentScriptAgent, input: unknown, hooks = recordingHooks().hooks) {
  return a.run(request({ input }), hooks);
}

test("PersistentScriptAgent.run: many concurrent requests spread over 2 instances, each answered with its own output", async () => {
  const a = agent(2);
  try {
    const recorders = Array.from({ length: 300 }, () => recordingHooks());
    const results = await Promise.all(recorders.map(({ hooks }, i) => a.run(request({ input: { op: "echo", n: i }, attempt: 3, kv: { k: i } }), hooks)));
    const outputs = results.map(output);
    outputs.forEach((out, i) => {
      assert.deepEqual(out.input, { op: "echo", n: i });
      assert.equal(out.attempt, 3);
      assert.deepEqual(out.kv, { k: i });
    });
    assert.equal(new Set(outputs.map((o) => o.pid)).size, 2);
    assert.deepEqual(new Set(outputs.map((o) => o.instance)), new Set(["0", "1"]));
    assert.ok(recorders.every(({ seen }) => seen.heartbeats === 1), "each request's heartbeat reached its own hooks");
  } finally {
    await a.close();
  }
});

test("PersistentScriptAgent.run: checkpoints are routed by id, applied in order and awaited before the result", async () => {
  const a = agent(1);
  try {
    const log: string[] = [];
    let settled = false;
    const { hooks, seen } = recordingHooks(async (key, value) => {
      log.push(`${key}=${String(value)}`);
      // A slow store: the answer must still wait for every write.
      await new Promise((resolve) => setTimeout(resolve, 40));
      assert.equal(settled, false);
    });
    const other = recordingHooks();
    const [mine, theirs] = await Promise.all([run(a, { op: "checkpoints" }, hooks), run(a, { op: "echo" }, other.hooks)]);
    settled = true;
    output(mine);
    output(theirs);
    assert.deepEqual(log, ["i=1", "i=2", "i=3"]);
    assert.deepEqual(seen.checkpoints.map((c) => c.value), [1, 2, 3]);
    assert.deepEqual(seen.progress, [{ pct: 100, message: "done" }]);
    assert.equal(other.seen.checkpoints.length, 0);
  } finally {
    await a.close();
  }
});

test("PersistentScriptAgent.run: error answers map to AGENT_FAILED or, with retryable false, NON_RETRYABLE", async () => {
  const a = agent(1);
  try {
    const retry = error(await run(a, { op: "fail" }));
    assert.equal(retry.error.code, ErrorCode.AGENT_FAILED);
    assert.equal(retry.retryable, true);
    assert.match(retry.error.message, /no such thing/);
    const final = error(await run(a, { op: "fail", retryable: false }));
    assert.equal(final.error.code, ErrorCode.NON_RETRYABLE);
    assert.equal(final.retryable, false);
  } finally {
    await a.close();
  }
});

test("PersistentScriptAgent.run: a crash fails only the requests in flight on that instance; the next request succeeds after restart", async () => {
  const a = agent(2);
  try {
    const slow = run(a, { op: "delay", ms: 1_500, value: "survivor" });
    const crash = error(await run(a, { op: "crash" }));
    assert.equal(crash.error.code, ErrorCode.AGENT_FAILED);
    assert.match(crash.error.message, /exited with code 7/);
    assert.match(crash.error.message, /about to crash: segfault imitation/);
    assert.equal((crash.error.details as { kind: string }).kind, "instance-failed");
    assert.equal(output(await slow).value, "survivor");
    const after = await Promise.all([run(a, { op: "echo" }), run(a, { op: "echo" })]);
    assert.equal(new Set(after.map((r) => output(r).pid)).size, 2);
  } finally {
    await a.close();
  }
});

test("PersistentScriptAgent.run: a hung request times out, its instance is killed after the grace period and replaced", async () => {
  const a = agent(1, 2_000);
  try {
    const first = output(await run(a, { op: "echo" })).pid as number;
    const started = Date.now();
    const hung = error(await run(a, { op: "hang" }));
    assert.equal(hung.error.code, ErrorCode.STEP_TIMEOUT);
    assert.match(hung.error.message, /timed out after 2000 ms; sent "cancel"/);
    assert.ok(Date.now() - started >= 1_980);
    await until(`instance ${first} to be killed`, () => gone(first), 5_000);
    const next = output(await run(a, { op: "echo" }));
    assert.notEqual(next.pid, first);
  } finally {
    await a.close();
  }
});

test("PersistentScriptAgent.run: garbage on stdout fails the requests in flight on that instance; the next request succeeds", async () => {
  const a = agent(1);
  try {
    const first = output(await run(a, { op: "echo" })).pid as number;
    const pending = run(a, { op: "delay", ms: 5_000, value: "never" });
    const garbage = error(await run(a, { op: "garbage" }));
    assert.match(garbage.error.message, /wrote garbage on stdout .*Traceback \(most recent call last\)/);
    const inFlight = error(await pending);
    assert.equal(inFlight.error.code, ErrorCode.AGENT_FAILED);
    assert.match(inFlight.error.message, /wrote garbage on stdout/);
    const next = output(await run(a, { op: "echo" }));
    assert.notEqual(next.pid, first);
    await until(`instance ${first} to be killed`, () => gone(first), 5_000);
  } finally {
    await a.close();
  }
});

test("PersistentScriptAgent.run: hard cancel sends cancel; an instance that answers it is kept", async () => {
  const a = agent(1);
  try {
    const first = output(await run(a, { op: "echo" })).pid as number;
    const { hooks, controller } = recordingHooks();
    const pending = run(a, { op: "cancellable" }, hooks);
    controller.abort(new RelayMeshError(ErrorCode.ABORTED, "task task-1 was cancelled (hard)"));
    const cancelled = error(await pending);
    assert.equal(cancelled.error.code, ErrorCode.ABORTED);
    assert.equal(cancelled.error.message, "task task-1 was cancelled (hard)");
    // Answered in time: the same process serves the next request.
    assert.equal(output(await run(a, { op: "echo" })).pid, first);
  } finally {
    await a.close();
  }
});

test("PersistentScriptAgent.run: hard cancel of a request that never answers kills its instance, failing its other requests precisely", async () => {
  const a = agent(1);
  try {
    const first = output(await run(a, { op: "echo" })).pid as number;
    const { hooks, controller } = recordingHooks();
    const cancelled = run(a, { op: "hang" }, hooks);
    const bystander = run(a, { op: "hang" });
    controller.abort(new RelayMeshError(ErrorCode.ABORTED, "cancelled"));
    assert.equal(error(await cancelled).error.code, ErrorCode.ABORTED);
    const other = error(await bystander);
    assert.equal(other.error.code, ErrorCode.AGENT_FAILED);
    assert.match(other.error.message, /did not answer "cancel" of request .* within 300 ms; it was killed/);
    assert.match(other.error.message, /hanging on/);
    await until(`instance ${first} to be killed`, () => gone(first), 5_000);
    assert.notEqual(output(await run(a, { op: "echo" })).pid, first);
  } finally {
    await a.close();
  }
});

test("PersistentScriptAgent.close: fails pending requests with ABORTED, ends the instances, refuses new requests", async () => {
  const a = agent(2);
  const pids = (await Promise.all([run(a, { op: "echo" }), run(a, { op: "echo" })])).map((r) => output(r).pid as number);
  const pending = run(a, { op: "hang" });
  await a.close();
  const e = error(await pending);
  assert.equal(e.error.code, ErrorCode.ABORTED);
  for (const pid of pids) assert.ok(gone(pid), `instance ${pid} is gone after close()`);
  assert.equal(error(await run(a, { op: "echo" })).error.code, ErrorCode.ABORTED);
  await a.close();
});

test("PersistentScriptAgent.run: a program that cannot start fails its requests precisely", async () => {
  const config = scriptConfig("missing", ["/nonexistent/relaymesh-agent"], { mode: "persistent", instances: 1 });
  const a = new PersistentScriptAgent(config, options);
  try {
    const e = error(await a.run(request(), recordingHooks().hooks));
    assert.equal(e.error.code, ErrorCode.AGENT_FAILED);
    assert.match(e.error.message, /could not start \/nonexistent\/relaymesh-agent: .*ENOENT/);
  } finally {
    await a.close();
  }
});
