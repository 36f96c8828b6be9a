import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { RelayMesh } from "../../src/index.js";
import { REPO, storeFor, writeSettings } from "../helpers.js";

/** A root whose agents/modules.json registers the `record` test agent. */
export function prepareRoot(root: string, settings: Record<string, unknown> = {}): void {
  writeSettings(root, { leaseTimeoutMs: 1_000, baseBackoffMs: 50, maxBackoffMs: 200, ...settings });
  mkdirSync(join(root, "agents"), { recursive: true });
  writeFileSync(join(root, "agents", "modules.json"), JSON.stringify({
    agents: [
      { id: "record", module: join(REPO, "test/fixtures/process/record.mjs"), export: "record" },
      { id: "flaky", module: join(REPO, "test/fixtures/process/flaky.mjs"), export: "flaky" },
      { id: "timed", module: join(REPO, "test/fixtures/process/timed.mjs"), export: "timed" },
    ],
  }));
}

/** An engine that only submits and reads, on the same root as the worker processes. */
export function reader(root: string): Promise<RelayMesh> {
  const store = storeFor(root);
  return RelayMesh.open({ root, work: false, ...(store ? { store } : {}) });
}

/** Counts tasks per status. */
export async function statusCounts(mesh: RelayMesh): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const status of ["PENDING", "RUNNING", "SUCCESS", "DEAD_LETTER", "CANCELLED"] as const) {
    out[status] = (await mesh.listTasks({ status, limit: 1 })).total;
  }
  return out;
}
