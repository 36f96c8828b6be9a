import { join } from "node:path";
import { writeJsonFile } from "../../ops/exports.js";
import { numberOption, withMesh, type CommandResult, type GlobalOptions } from "../context.js";

/** Lease conflicts and reclaims over the last `--hours`, aggregated; written to --out or reports/. */
export default async function leaseReport(globals: GlobalOptions, flags: { hours?: string; out?: string }): Promise<CommandResult> {
  const hours = numberOption("hours", flags.hours) ?? 24;
  return withMesh(globals, { work: false }, async (mesh) => {
    const toMs = Date.now();
    const fromMs = toMs - hours * 3_600_000;
    const events = await mesh.ownershipEvents({ sinceMs: fromMs, limit: 1_000_000 });
    // Node ids and operations are user input: counted in a Map, returned as own properties.
    const count = (key: (e: (typeof events)[number]) => string | null) => {
      const out = new Map<string, number>();
      for (const e of events) { const k = key(e); if (k !== null) out.set(k, (out.get(k) ?? 0) + 1); }
      return Object.fromEntries(out);
    };
    const conflicts = events.filter((e) => e.kind === "lease-conflict");
    const byTask = new Map<string, number>();
    for (const c of conflicts) if (c.taskId) byTask.set(c.taskId, (byTask.get(c.taskId) ?? 0) + 1);
    const report = {
      hours, fromMs, toMs,
      conflicts: conflicts.length,
      conflictsByNode: count((e) => (e.kind === "lease-conflict" ? e.nodeId : null)),
      conflictsByOperation: count((e) => (e.kind === "lease-conflict" ? String(e.details.operation ?? "unknown") : null)),
      topTasks: [...byTask].sort((a, b) => b[1] - a[1]).slice(0, 10).map(([taskId, n]) => ({ taskId, conflicts: n })),
      reclaimsFromDeadNodes: events.filter((e) => e.kind === "dead-owner-reclaim").length,
      reclaimsOfExpiredLeases: events.filter((e) => e.kind === "expired-lease-reclaim").length,
      reclaimsByFormerOwner: count((e) => (e.kind === "dead-owner-reclaim" ? e.fromNode : null)),
    };
    const out = writeJsonFile(flags.out ?? join(mesh.paths.reportsDir, `lease-report-${new Date(toMs).toISOString().replace(/[:.]/g, "-")}.json`), report);
    return {
      data: { ...report, out },
      human: `last ${hours} h: ${report.conflicts} lease conflict(s), ${report.reclaimsFromDeadNodes} reclaim(s) from DEAD nodes, ${report.reclaimsOfExpiredLeases} of expired leases; report written to ${out}`,
    };
  });
}
