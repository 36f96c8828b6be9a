import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { BIN, REPO, cli, tempRoot, waitUntil } from "../helpers.js";

/** The one line a failing command prints on stderr (and nothing else there). */
function oneLine(stderr: string): string {
  const lines = stderr.split("\n").filter((l) => l.length > 0);
  assert.equal(lines.length, 1, `one stderr line expected, got:\n${stderr}`);
  return lines[0]!;
}

test("cli: parser errors print one stderr line, exit 2, and one {error:{code,message,details}} document under --json", async (t) => {
  const { root, cleanup } = tempRoot();
  t.after(cleanup);
  const cases: [string[], RegExp][] = [
    [["tasks", "--bogus"], /unknown option '--bogus'/],
    [["submit", "--agent"], /argument missing/],
    [["submit", "--input", "1"], /required option '--agent/],
    [["bogus"], /unknown command 'bogus'/],
    [["task"], /missing required argument/],
    [["tasks", "--limit", "x"], /--limit: expected an integer/],
    [["submit", "--agent", "echo", "--input", "{bad"], /--input: invalid JSON/],
    [["kv", "put", "k", "{bad"], /kv put VALUE: invalid JSON/],
    [["worker", "--once", "--shutdown-timeout-ms", "2147483648"], /--shutdown-timeout-ms: expected an integer from 0 to 2147483647/],
  ];
  for (const [args, pattern] of cases) {
    for (const json of [false, true]) {
      const r = await cli([...args, "--root", root, ...(json ? ["--json"] : [])]);
      assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
      assert.match(oneLine(r.stderr), pattern);
      if (!json) { assert.equal(r.stdout, ""); continue; }
      const doc = r.json<{ error: { code: string | null; message: string; details: unknown } }>();
      assert.deepEqual(Object.keys(doc.error).sort(), ["code", "details", "message"]);
      assert.match(doc.error.code ?? "", /^RELAYMESH_ERR_/, args.join(" "));
      assert.match(doc.error.message, pattern);
    }
  }
  const none = await cli([]);
  assert.equal(none.code, 2);
  assert.match(oneLine(none.stderr), /no command given/);
  // Nothing was written by any of them: the store holds no task.
  const tasks = await cli(["tasks", "--root", root, "--json"]);
  assert.equal(tasks.json().total, 0);
});

test("submit: --input is JSON only; a quoted string is a string", async (t) => {
  const { root, cleanup } = tempRoot();
  t.after(cleanup);
  const r = await cli(["submit", "--agent", "echo", "--input", "\"{bad\"", "--root", root, "--json"]);
  assert.equal(r.code, 0, r.stderr);
  const task = (await cli(["task", r.json().taskId, "--root", root, "--json"])).json();
  assert.equal(task.steps[0].output, null);
  assert.equal((await cli(["worker", "--once", "--root", root])).code, 0);
  assert.equal((await cli(["task", r.json().taskId, "--root", root, "--json"])).json().steps[0].output, "{bad");
});

test("cli: a closed stdout ends the command quietly (no EPIPE stack trace)", async (t) => {
  const { root, cleanup } = tempRoot();
  t.after(cleanup);
  for (let i = 0; i < 3; i++) assert.equal((await cli(["submit", "--agent", "echo", "--input", "1", "--root", root])).code, 0);
  // The reader closes its end at once, as `head -1` does after one line.
  const result = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
    const child = spawn(process.execPath, [BIN, "tasks", "--limit", "3", "--root", root], { cwd: REPO, stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    child.stdout.destroy();
    child.stderr.on("data", (d) => (stderr += d));
    child.on("close", (code) => resolve({ code, stderr }));
  });
  assert.equal(result.stderr, "");
  assert.equal(result.code, 0);
});

test("cli: a root that cannot be created or used is one line at once: exit 2 for a bad path", async (t) => {
  const { root, cleanup } = tempRoot();
  t.after(cleanup);
  const file = join(root, "a-file");
  writeFileSync(file, "x");
  for (const [dir, pattern] of [["/proc/relaymesh-nope/bar", /cannot create \/proc\/relaymesh-nope/], [file, /exists and is not a folder/], [join(file, "sub"), /ENOTDIR/]] as const) {
    const r = await cli(["init", "--root", dir, "--json"], { timeoutMs: 10_000 });
    assert.equal(r.code, 2, `${dir}: ${r.stderr}`);
    assert.match(oneLine(r.stderr), pattern);
    assert.equal(r.json().error.code, "RELAYMESH_ERR_INVALID_OPTIONS");
  }
  // Export paths take the same route.
  const out = await cli(["dead-export", "--out", "/proc/relaymesh-nope/x.json", "--root", join(root, "r")], { timeoutMs: 10_000 });
  assert.equal(out.code, 2, out.stderr);
  assert.match(oneLine(out.stderr), /cannot create \/proc\/relaymesh-nope/);
});

test("fail built-in: takes any input; a string input.message becomes its error message", async (t) => {
  const { root, cleanup } = tempRoot();
  t.after(cleanup);
  const flow = join(root, "flow.json");
  writeFileSync(flow, JSON.stringify({
    steps: [
      { id: "n", agent: "fail", input: 1, retry: { maxAttempts: 1 } },
      { id: "o", agent: "fail", input: { why: "x" }, retry: { maxAttempts: 1 } },
      { id: "m", agent: "fail", input: { message: "custom reason", extra: [1] }, retry: { maxAttempts: 1 } },
      { id: "s", agent: "fail", input: { message: 42 }, retry: { maxAttempts: 1 } },
    ],
  }));
  const r = await cli(["run", flow, "--root", root, "--json"]);
  assert.equal(r.code, 1, r.stderr);
  const steps = new Map(r.json<{ steps: { stepId: string; status: string; error: { message: string } }[] }>().steps.map((s) => [s.stepId, s]));
  for (const s of steps.values()) assert.equal(s.status, "DEAD_LETTER");
  assert.match(steps.get("m")!.error.message, /^custom reason/);
  assert.match(steps.get("n")!.error.message, /^the fail agent always fails/);
  assert.match(steps.get("s")!.error.message, /^the fail agent always fails/);
});

test("maintenance --node-id N: records N's heartbeat before rating the others, so N is never rated DEAD by its own tick", async (t) => {
  const { root, cleanup } = tempRoot();
  t.after(cleanup);
  writeFileSync(join(root, "relaymesh-settings.json"), JSON.stringify({ suspectAfterMs: 100, deadAfterMs: 200, suspectRecoverMinMs: 0, deadRecoverMinMs: 0 }));
  for (const node of ["node-a", "node-b"]) assert.equal((await cli(["maintenance", "--node-id", node, "--root", root])).code, 0);
  const started = Date.now();
  await waitUntil(() => Date.now() - started > 300, "both heartbeats to age past deadAfterMs");
  const r = await cli(["maintenance", "--node-id", "node-b", "--root", root, "--json"]);
  assert.equal(r.code, 0, r.stderr);
  const members = new Map((await cli(["members", "--root", root, "--json"])).json<{ members: { nodeId: string; status: string }[] }>().members.map((m) => [m.nodeId, m.status]));
  assert.equal(members.get("node-a"), "DEAD");
  assert.equal(members.get("node-b"), "ALIVE");
});
