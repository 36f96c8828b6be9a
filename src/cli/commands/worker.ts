import { durationOption, intOption, openMesh, type CommandResult, type GlobalOptions } from "../context.js";
import { handleShutdownSignals } from "../signals.js";

export interface WorkerFlags {
  once?: boolean;
  nodeId?: string;
  workerId?: string;
  concurrency?: string;
  shutdownTimeoutMs?: string;
  settingsReloadMs?: string;
  inboxPollMs?: string;
}

/**
 * Runs steps. `--once`: one maintenance pass, everything runnable now, then exit. Otherwise
 * runs until SIGINT/SIGTERM: stops claiming, lets in-flight steps finish (or releases them
 * after --shutdown-timeout-ms, or at once on a second signal), then exits.
 */
export default async function worker(globals: GlobalOptions, flags: WorkerFlags): Promise<CommandResult> {
  const concurrency = intOption("concurrency", flags.concurrency, { min: 1, max: 10_000 });
  const shutdownTimeoutMs = durationOption("shutdown-timeout-ms", flags.shutdownTimeoutMs) ?? 30_000;
  const settingsReloadMs = durationOption("settings-reload-ms", flags.settingsReloadMs, 50);
  const inboxPollMs = durationOption("inbox-poll-ms", flags.inboxPollMs, 50) ?? 1_000;
  const nodeId = flags.nodeId !== undefined && flags.workerId !== undefined ? `${flags.nodeId}:${flags.workerId}`
    : flags.nodeId ?? (flags.workerId !== undefined ? `worker-${flags.workerId}` : undefined);
  const mesh = await openMesh(globals, {
    work: false,
    storeThread: true,
    ...(concurrency !== undefined ? { concurrency } : {}),
    ...(nodeId !== undefined ? { nodeId } : {}),
  });
  const ingest = () => mesh.ingest().then((r) => {
    for (const d of r.dead) process.stderr.write(`relaymesh: inbox file ${d.file} is invalid, moved to inbox/dead/: ${d.problems.map((p) => `${p.where}: ${p.message}`).join("; ")}\n`);
  });
  if (flags.once) {
    try {
      await ingest();
      await mesh.runUntilIdle();
    } finally {
      await mesh.close();
    }
  } else {
    if (settingsReloadMs !== undefined) mesh.watchSettings(settingsReloadMs);
    mesh.on("engine:error", ({ error }) => process.stderr.write(`relaymesh: ${error.message}\n`));
    let ingesting = ingest().catch((error: Error) => process.stderr.write(`relaymesh: inbox: ${error.message}\n`));
    const inboxTimer = setInterval(() => {
      ingesting = ingesting.then(ingest).catch((error: Error) => process.stderr.write(`relaymesh: inbox: ${error.message}\n`));
    }, inboxPollMs);
    mesh.on("engine:closing", () => clearInterval(inboxTimer));
    mesh.start();
    process.stderr.write(`relaymesh: worker ${mesh.nodeId} running on ${mesh.store.location} (concurrency ${concurrency ?? 8})\n`);
    let removeHandlers = () => {};
    await new Promise<void>((resolve, reject) => {
      removeHandlers = handleShutdownSignals(
        () => mesh.close({ timeoutMs: shutdownTimeoutMs }).then(resolve, reject),
        () => mesh.close({ force: true }).then(resolve, reject),
      );
    }).finally(() => removeHandlers());
  }
  const stats = mesh.attempts;
  return {
    data: { nodeId: mesh.nodeId, ...stats },
    human: `worker ${mesh.nodeId}: ${stats.executed} step attempts, ${stats.succeeded} succeeded, ${stats.failed} failed`,
  };
}
