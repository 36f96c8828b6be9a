import { test } from "node:test";
import assert from "node:assert/strict";
import { TEST_STORE } from "../helpers.js";
import { drainWithWorkers } from "./setup.js";

test("worker: three processes drain 10,000 steps from PostgreSQL, each success committed exactly once", { skip: TEST_STORE !== "postgres" && "PostgreSQL runs only" }, async (t) => {
  const reports = await drainWithWorkers(t, ["a", "b", "c"], 10_000, 300_000);
  assert.ok(reports.every((r) => r.succeeded > 0), `every worker took work: ${JSON.stringify(reports)}`);
});
