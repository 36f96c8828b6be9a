import { withMesh, type CommandResult, type GlobalOptions } from "../context.js";

/** Copies this root's store into another store (`--to`), e.g. an embedded root onto PostgreSQL. */
export default async function migrate(globals: GlobalOptions, flags: { to: string; merge?: boolean }): Promise<CommandResult> {
  return withMesh(globals, { work: false }, async (mesh) => {
    const r = await mesh.migrateTo(flags.to, { merge: flags.merge === true });
    const c = r.copied;
    return {
      data: r,
      human: `${r.from} → ${r.to}: ${c.tasks} task(s), ${c.steps} step(s), ${c.outputs} output(s), ${c.kv} checkpoint(s), ` +
        `${c.leaseConflicts} lease conflict(s), ${c.settingsHistory} settings change(s) copied; ${r.requeued} running step(s) requeued` +
        (r.alreadyPresent.tasks > 0 ? `; ${r.alreadyPresent.tasks} task(s) already in the target, not copied again` : ""),
    };
  });
}
