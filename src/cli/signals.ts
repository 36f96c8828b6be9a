/**
 * The first SIGINT/SIGTERM asks for a graceful stop, the second forces it, and an unref'd
 * watchdog ends a process whose exit hangs. Returns a function that removes the handlers.
 */
export function handleShutdownSignals(
  graceful: () => void,
  force: () => void,
  options: { watchdogMs?: number; firstMessage?: string } = {},
): () => void {
  const watchdogMs = options.watchdogMs ?? 60_000;
  const firstMessage = options.firstMessage ?? "finishing in-flight steps (send again to force)";
  let count = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    count++;
    if (count === 1) {
      process.stderr.write(`relaymesh: ${signal} received, ${firstMessage}\n`);
      const watchdog = setTimeout(() => {
        process.stderr.write(`relaymesh: shutdown did not finish within ${watchdogMs} ms, exiting\n`);
        process.exit(1);
      }, watchdogMs);
      watchdog.unref();
      graceful();
    } else {
      process.stderr.write(`relaymesh: ${signal} received again, aborting in-flight steps and releasing their leases\n`);
      force();
    }
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  return () => {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  };
}
