import { test } from "node:test";
import { drainWithWorkers } from "./setup.js";

test("worker: two processes on one root drain 1,000 tasks, each step succeeding exactly once", async (t) => {
  await drainWithWorkers(t, ["a", "b"], 1_000, 120_000);
});
