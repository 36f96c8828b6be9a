import { test } from "node:test";
import assert from "node:assert/strict";
import { cli, tempRoot } from "../helpers.js";

test("submit: concurrent processes with one idempotency key create one task", async (t) => {
  const { root, cleanup } = tempRoot();
  t.after(cleanup);
  await cli(["init", "--root", root]);
  const results = await Promise.all(Array.from({ length: 8 }, () =>
    cli(["submit", "--root", root, "--agent", "echo", "--input", "{\"n\":1}", "--idempotency-key", "order-42", "--json"])));
  for (const r of results) assert.equal(r.code, 0, r.stderr);
  const docs = results.map((r) => r.json<{ taskId: string; created: boolean }>());
  assert.equal(new Set(docs.map((d) => d.taskId)).size, 1);
  assert.equal(docs.filter((d) => d.created).length, 1);
  const list = (await cli(["tasks", "--root", root, "--json"])).json<{ total: number; tasks: { idempotencyKey: string }[] }>();
  assert.equal(list.total, 1);
  assert.equal(list.tasks[0]!.idempotencyKey, "order-42");
});
