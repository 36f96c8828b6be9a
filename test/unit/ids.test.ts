import { test } from "node:test";
import assert from "node:assert/strict";
import { newTimeOrderedId } from "../../src/observe/ids.js";

const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

test("newTimeOrderedId: a UUID version 7 whose first 48 bits are the given Unix milliseconds", () => {
  const at = Date.UTC(2026, 11, 1, 12, 0, 0, 123);
  const id = newTimeOrderedId(at);
  assert.match(id, UUID_V7);
  assert.equal(parseInt(id.slice(0, 8) + id.slice(9, 13), 16), at);
  assert.notEqual(newTimeOrderedId(at), id, "random bits differ within one millisecond");
});

test("newTimeOrderedId: ids of later milliseconds sort after earlier ones as strings", () => {
  const base = Date.now();
  const ids = Array.from({ length: 200 }, (_, i) => newTimeOrderedId(base + i * 7));
  assert.deepEqual([...ids].sort(), ids);
  for (const id of ids) assert.match(id, UUID_V7);
});
