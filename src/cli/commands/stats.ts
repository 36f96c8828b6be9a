import { withMesh, type CommandResult, type GlobalOptions } from "../context.js";
import { table } from "../format.js";

export default async function stats(globals: GlobalOptions): Promise<CommandResult> {
  return withMesh(globals, { work: false }, async (mesh) => {
    const s = await mesh.stats();
    const human = [
      table(["TASKS", "N"], Object.entries(s.tasks)),
      table(["STEPS", "N"], Object.entries(s.steps)),
      `queue lag ${s.queueLagMs} ms, step latency p95 ${s.stepLatencyP95Ms ?? "-"} ms, p99 ${s.stepLatencyP99Ms ?? "-"} ms, dead letters in the last hour ${s.deadLetterGrowth1h}`,
      ...s.unservable.map((u) => `${u.readySteps} READY step(s) of agent "${u.agent}" wait for a node that serves it (the oldest for ${u.waitingMs} ms)`),
    ].join("\n\n");
    return { data: s, human };
  });
}
