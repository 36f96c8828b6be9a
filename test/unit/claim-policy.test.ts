import { test } from "node:test";
import assert from "node:assert/strict";
import { claimLimit, headroom, machineLoad, relativeLoad } from "../../src/mesh/claim-policy.js";
import type { NodeLoad, NodeRecord } from "../../src/store/types.js";

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

function node(nodeId: string, load: NodeLoad | null, status: NodeRecord["status"] = "ALIVE"): NodeRecord {
  return { nodeId, hostname: "h", pid: 1, state: "running", startedAtMs: 0, lastHeartbeatMs: 0, stoppedAtMs: null, status, statusSinceMs: 0, agents: null, load };
}

test("headroom: the machine's free share (busier of CPU and memory) times the free share of slots", () => {
  assert.equal(headroom({ cpu: 0.2, memory: 0.5, running: 0, capacity: 10 }), 0.5);
  assert.equal(headroom({ cpu: 0.2, memory: 0, running: 5, capacity: 10 }), 0.4);
  assert.equal(headroom({ cpu: 3, memory: 0, running: 0, capacity: 10 }), 0, "an overloaded machine has none");
  assert.equal(headroom({ cpu: 0, memory: 0, running: 12, capacity: 10 }), 0);
});

test("relativeLoad: next to the live node with the most headroom; dead nodes and nodes without a report do not count", () => {
  const nodes = [
    node("busy", { cpu: 0.95, memory: 0.1, running: 0, capacity: 16 }),
    node("idle", { cpu: 0.05, memory: 0.1, running: 0, capacity: 16 }),
    node("half", { cpu: 0.05, memory: 0.1, running: 8, capacity: 16 }),
    node("dead", { cpu: 0, memory: 0, running: 0, capacity: 100 }, "DEAD"),
    node("old", null),
  ];
  assert.equal(relativeLoad("idle", nodes), 0);
  assert.ok(Math.abs(relativeLoad("half", nodes)! - 0.5) < 1e-9);
  assert.ok(Math.abs(relativeLoad("busy", nodes)! - (1 - 0.05 / 0.9)) < 1e-9);
  assert.equal(relativeLoad("old", nodes), null, "no report of its own: the caller uses its machine's load");
  assert.equal(claimLimit("resource_usage", 16, 0, () => relativeLoad("busy", nodes)!), 1, "the busy node takes one step at a time");
  assert.equal(claimLimit("resource_usage", 16, 0, () => relativeLoad("idle", nodes)!), 16);
  const allFull = [node("a", { cpu: 1, memory: 0, running: 0, capacity: 4 }), node("b", { cpu: 0, memory: 0, running: 4, capacity: 4 })];
  assert.equal(relativeLoad("a", allFull), 0, "when no node has headroom none is held back");
});
