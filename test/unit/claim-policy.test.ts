import { test } from "node:test";
import assert from "node:assert/strict";
import { claimLimit, machineLoad } from "../../src/mesh/claim-policy.js";

test("claimLimit: capacity claims every free slot whatever the load", () => {
  assert.equal(claimLimit("capacity", 16, 4, () => 0.9), 16);
  assert.equal(claimLimit("capacity", 0, 24, () => 0), 0);
});

test("claimLimit: resource_usage scales claims down with the machine's load, never to nothing while idle", () => {
  assert.equal(claimLimit("resource_usage", 16, 4, () => 0), 16);
  assert.equal(claimLimit("resource_usage", 16, 4, () => 0.5), 8);
  assert.equal(claimLimit("resource_usage", 16, 4, () => 1), 0);
  assert.equal(claimLimit("resource_usage", 16, 0, () => 1), 1, "an idle node still takes one step");
  assert.equal(claimLimit("resource_usage", 0, 24, () => 0), 0);
});

test("machineLoad: a fraction between 0 and 1", () => {
  const load = machineLoad();
  assert.ok(load >= 0 && load <= 1, String(load));
});
