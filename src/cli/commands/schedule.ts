import { parseSchedule, type ScheduleInput } from "../../schedule/definition.js";
import { choiceOption, durationOption, withMesh, type CommandResult, type GlobalOptions } from "../context.js";
import { ExitCode, ExitError } from "../errors.js";
import { table, time } from "../format.js";
import { preflightWorkflow, readWorkflowFile } from "../preflight.js";

export interface ScheduleFlags {
  name?: string;
  cron?: string;
  file?: string;
  timezone?: string;
  overlap?: string;
  catchUp?: string;
  catchUpWindow?: string;
  jitter?: string;
  paused?: boolean;
}

const ACTIONS = ["add", "list", "show", "pause", "resume", "remove", "trigger"] as const;

/** `schedule add|list|show|pause|resume|remove|trigger`: cron schedules kept in the store. */
export default async function schedule(globals: GlobalOptions, action: string, name: string | undefined, flags: ScheduleFlags): Promise<CommandResult> {
  const act = choiceOption("action", action, ACTIONS)!;
  if (act === "add") return add(globals, flags);
  if (act === "list") {
    return withMesh(globals, { work: false }, async (mesh) => {
      const schedules = await mesh.listSchedules();
      const human = schedules.length === 0 ? "no schedules" : table(["NAME", "CRON", "TIMEZONE", "PAUSED", "NEXT", "LAST TASK", "FIRED", "SKIPPED"],
        schedules.map((s) => [s.name, s.cron, s.timezone ?? "UTC", s.paused ? "yes" : "no", time(s.nextAtMs), s.lastTaskId, s.firedCount, s.skippedCount]));
      return { data: { schedules }, human };
    });
  }
  if (name === undefined) throw new ExitError(ExitCode.USAGE, `schedule ${act}: the schedule name is required (schedule ${act} NAME)`);
  return withMesh(globals, { work: false }, async (mesh) => {
    switch (act) {
      case "show": {
        const s = await mesh.getSchedule(name);
        return { data: { schedule: s }, human: describe(s) };
      }
      case "pause":
      case "resume": {
        const s = act === "pause" ? await mesh.pauseSchedule(name) : await mesh.resumeSchedule(name);
        return { data: { schedule: s }, human: `schedule ${name} ${act === "pause" ? "paused" : `resumed; next at ${time(s.nextAtMs)}`}` };
      }
      case "remove": {
        const r = await mesh.removeSchedule(name);
        return { data: r, human: `schedule ${name} removed` };
      }
      default: {
        const r = await mesh.triggerSchedule(name);
        return { data: r, human: `schedule ${name} triggered: task ${r.taskId}` };
      }
    }
  });
}

async function add(globals: GlobalOptions, flags: ScheduleFlags): Promise<CommandResult> {
  for (const [flag, value] of [["name", flags.name], ["cron", flags.cron], ["file", flags.file]] as const) {
    if (value === undefined) throw new ExitError(ExitCode.USAGE, `schedule add: --${flag} is required`);
  }
  const overlap = choiceOption("overlap", flags.overlap, ["skip", "allow", "cancel-previous"] as const);
  const catchUp = choiceOption("catch-up", flags.catchUp, ["none", "latest", "all"] as const);
  const catchUpWindowMs = durationOption("catch-up-window", flags.catchUpWindow);
  if (catchUpWindowMs === 0) throw new ExitError(ExitCode.USAGE, `--catch-up-window: must be positive, got "${flags.catchUpWindow}"`);
  const jitterMs = durationOption("jitter", flags.jitter);
  const workflow = readWorkflowFile(flags.file!);
  const input: ScheduleInput = {
    name: flags.name!, cron: flags.cron!, workflow,
    ...(flags.timezone !== undefined ? { timezone: flags.timezone } : {}),
    ...(overlap !== undefined ? { overlap } : {}),
    ...(catchUp !== undefined ? { catchUp } : {}),
    ...(catchUpWindowMs !== undefined ? { catchUpWindowMs } : {}),
    ...(jitterMs !== undefined ? { jitterMs } : {}),
    ...(flags.paused ? { paused: true } : {}),
  };
  // Checked before the root is touched: bad input writes nothing.
  parseSchedule(input, "schedule");
  preflightWorkflow(globals, workflow, flags.file!, {});
  return withMesh(globals, { work: false }, async (mesh) => {
    const { schedule: s, replaced } = await mesh.addSchedule(input);
    return { data: { schedule: s, replaced }, human: `schedule ${s.name} ${replaced ? "replaced" : "added"}; next at ${time(s.nextAtMs)}` };
  });
}

function describe(s: Awaited<ReturnType<import("../../engine.js").RelayMesh["getSchedule"]>>): string {
  return table(["FIELD", "VALUE"], [
    ["name", s.name], ["cron", s.cron], ["timezone", s.timezone ?? "UTC"], ["overlap", s.overlap], ["catch-up", s.catchUp],
    ["catch-up window (ms)", s.catchUpWindowMs], ["jitter (ms)", s.jitterMs], ["paused", s.paused ? "yes" : "no"],
    ["next at", time(s.nextAtMs)], ["last slot", time(s.lastSlotMs)], ["last task", s.lastTaskId], ["fired", s.firedCount], ["skipped", s.skippedCount],
  ]);
}
