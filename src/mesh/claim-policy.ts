import { availableParallelism, freemem, loadavg, totalmem } from "node:os";
import { z } from "zod";
import { InvalidOptionsError } from "../errors.js";
import type { NodeLoad, NodeRecord } from "../store/types.js";

/**
 * Test only: `RELAYMESH_TEST_MACHINE_USAGE='{"cpu":0.95,"memory":0.2}'` makes a node report this
 * usage instead of its machine's, so several nodes on one test machine can differ. Never set it in
 * production: the node would misreport its load.
 */
export const TEST_USAGE_ENV = "RELAYMESH_TEST_MACHINE_USAGE";
const TestUsageSchema = z.strictObject({ cpu: z.number().min(0).max(1_000), memory: z.number().min(0).max(1) });
let testUsage: { cpu: number; memory: number } | null | undefined;

function injectedUsage(): { cpu: number; memory: number } | null {
  if (testUsage !== undefined) return testUsage;
  const text = process.env[TEST_USAGE_ENV];
  if (text === undefined || text === "") return (testUsage = null);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new InvalidOptionsError(`${TEST_USAGE_ENV}: not JSON: ${text}`);
  }
  const parsed = TestUsageSchema.safeParse(value);
  if (!parsed.success) throw new InvalidOptionsError(`${TEST_USAGE_ENV}: ${z.prettifyError(parsed.error)}`);
  return (testUsage = parsed.data);
}

/** This machine's CPU load per core (1-minute average) and share of memory in use (or the test's, see TEST_USAGE_ENV). */
export function machineUsage(): { cpu: number; memory: number } {
  return injectedUsage() ?? { cpu: loadavg()[0]! / availableParallelism(), memory: 1 - freemem() / totalmem() };
}

/** This machine's load in [0, 1]: the busier of CPU (1-minute load per core) and memory in use. */
export function machineLoad(): number {
  const { cpu, memory } = machineUsage();
  return Math.min(1, Math.max(0, cpu, memory));
}

/** A node's headroom in [0, 1]: its machine's free share (the busier of CPU and memory) times its share of free slots. */
export function headroom(load: NodeLoad): number {
  const machine = Math.min(1, Math.max(0, load.cpu, load.memory));
  const slots = load.capacity > 0 ? Math.min(1, Math.max(0, 1 - load.running / load.capacity)) : 0;
  return (1 - machine) * slots;
}

/**
 * How loaded node `nodeId` is next to the live node with the most headroom (reported CPU, memory
 * and running steps on the node rows), in [0, 1]: 0 when no live node has more headroom, 1 when
 * it has none. Null when its own row carries no report yet (the caller falls back to its machine's load).
 */
export function relativeLoad(nodeId: string, nodes: readonly NodeRecord[]): number | null {
  const live = nodes.filter((n) => n.status === "ALIVE" && n.state === "running" && n.load !== null);
  const mine = live.find((n) => n.nodeId === nodeId);
  if (!mine) return null;
  const best = Math.max(...live.map((n) => headroom(n.load!)));
  return best <= 0 ? 0 : 1 - headroom(mine.load!) / best;
}

/**
 * How many steps to claim. `capacity`: every free slot. `resource_usage`: the free slots scaled
 * down by the node's load (relative to the live nodes with the most headroom), so new and
 * reclaimed work flows to the nodes with the most headroom — but never none while nothing runs
 * here, so a busy node still makes progress.
 */
export function claimLimit(policy: "capacity" | "resource_usage", free: number, inFlight: number, load: () => number): number {
  if (free <= 0 || policy === "capacity") return Math.max(0, free);
  const scaled = Math.floor(free * (1 - load()));
  return inFlight === 0 ? Math.max(1, scaled) : Math.max(0, scaled);
}
