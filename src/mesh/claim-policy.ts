import { availableParallelism, freemem, loadavg, totalmem } from "node:os";

/** This machine's CPU load per core (1-minute average) and share of memory in use. */
export function machineUsage(): { cpu: number; memory: number } {
  return { cpu: loadavg()[0]! / availableParallelism(), memory: 1 - freemem() / totalmem() };
}

/** This machine's load in [0, 1]: the busier of CPU (1-minute load per core) and memory in use. */
export function machineLoad(): number {
  const { cpu, memory } = machineUsage();
  return Math.min(1, Math.max(0, cpu, memory));
}

/**
 * How many steps to claim. `capacity`: every free slot. `resource_usage`: the free slots scaled
 * down by the machine's load, so work flows to the least loaded nodes — but never none while
 * nothing runs here, so a busy machine still makes progress.
 */
export function claimLimit(policy: "capacity" | "resource_usage", free: number, inFlight: number, load: () => number): number {
  if (free <= 0 || policy === "capacity") return Math.max(0, free);
  const scaled = Math.floor(free * (1 - load()));
  return inFlight === 0 ? Math.max(1, scaled) : Math.max(0, scaled);
}
