import { join } from "node:path";
import { parseDuration } from "../../bench/duration.js";
import { LiveLine } from "../../bench/live.js";
import { checkWorkload, readWorkflowFile, WorkloadError } from "../../bench/preflight.js";
import { summaryLines, writeReports } from "../../bench/output.js";
import { BENCHMARK_SHAPES, newRunId, runBenchmark, type BenchmarkOptions } from "../../bench/runner.js";
import { inPlaceTarget, scratchTarget } from "../../bench/target.js";
import type { WorkloadSpec } from "../../bench/workload.js";
import { redact } from "../../store/open.js";
import { defaultRoot, rootPaths } from "../../root.js";
import { ExitCode, ExitError } from "../errors.js";
import { handleShutdownSignals } from "../signals.js";
import { choiceOption, intOption, type CommandResult, type GlobalOptions } from "../context.js";

export interface BenchFlags {
  tasks?: string;
  shape?: string;
  inputSize?: string;
  concurrency?: string;
  maxSeconds?: string;
  reportOut?: string;
  workflow?: string;
  agent?: string;
  priority?: string;
  rate?: string;
  inFlight?: string;
  duration?: string;
  warmup?: string;
  durability?: string;
  inPlace?: boolean;
}

/** Longest `--duration` / `--max-seconds` (timers are bounded by 2^31-1 ms). */
const MAX_RUN_MS = 7 * 24 * 3600 * 1000;

/**
 * A sustained run of a built-in shape, an agent or the user's workflow at an offered load, by
 * default in a scratch root and store beside the given ones (removed afterwards); `--in-place`
 * runs in the real store with every task named `bench:<run id>`. Writes a JSON report and an
 * HTML report beside it. Ctrl-C stops submitting, drains and still reports.
 */
export default async function bench(globals: GlobalOptions, flags: BenchFlags): Promise<CommandResult> {
  const o = parseFlags(flags);
  const paths = rootPaths(globals.root ?? defaultRoot());
  const storeUrl = globals.store ?? (process.env.RELAYMESH_STORE || undefined);
  let config;
  try {
    config = checkWorkload(paths, o.workload, o.workloadOption);
  } catch (error) {
    if (error instanceof WorkloadError) throw new ExitError(ExitCode.USAGE, error.message);
    throw error;
  }
  const runId = newRunId();
  const target = o.inPlace ? inPlaceTarget(paths, storeUrl) : scratchTarget(paths, config, storeUrl);
  const stop = new AbortController();
  const abandon = new AbortController();
  if (o.run.warmupTasks) process.stderr.write(`relaymesh: bench ${runId}: warming up with ${o.run.warmupTasks} tasks\n`);
  const removeSignals = handleShutdownSignals(() => stop.abort(), () => abandon.abort(), {
    firstMessage: "stopped submitting; draining the tasks in flight, then writing the report (send again to stop waiting)",
    watchdogMs: 600_000,
  });
  const byTime = o.run.tasks === undefined;
  let live = null as LiveLine | null;
  try {
    const report = await runBenchmark({
      ...o.run, root: target.root, ...(target.store !== undefined ? { store: target.store } : {}), runId,
      ...(target.inPlace ? { taskName: `bench:${runId}`, watchStore: true } : {}),
      stopSignal: stop.signal, abandonSignal: abandon.signal,
      onMeasuring: () => {
        process.stderr.write(`relaymesh: bench ${runId}: measuring on ${target.inPlace ? redact(target.location) : "a scratch store"} (Ctrl-C stops submitting, drains and writes the report)\n`);
        if (process.stderr.isTTY) live = new LiveLine(byTime ? Math.ceil(o.run.durationMs! / 1000) : o.run.tasks!, byTime);
      },
      onSample: (s, f) => live?.update(s, f),
    });
    live?.stop();
    const inPlace = target.inPlace ? { inPlace: true, taskName: `bench:${runId}` } : { inPlace: false };
    const full = { ...report, store: target.inPlace ? redact(target.location) : `scratch (${report.store})`, ...inPlace };
    const out = writeReports(flags.reportOut ?? join(paths.reportsDir, `bench-${new Date().toISOString().replace(/[:.]/g, "-")}.json`), full);
    const { series: _series, workflow: _workflow, ...brief } = full;
    return {
      data: { ...brief, reportOut: out.json, htmlOut: out.html },
      human: [...summaryLines(full), `report: ${out.json}`, `plots:  ${out.html}`].join("\n"),
      exitCode: report.notSucceeded > 0 ? ExitCode.FAILED : ExitCode.OK,
    };
  } finally {
    live?.stop();
    removeSignals();
    await target.cleanup();
  }
}

interface ParsedFlags {
  run: Omit<BenchmarkOptions, "root">;
  workload: WorkloadSpec;
  /** The option the workload came from, for error messages. */
  workloadOption: string;
  inPlace: boolean;
}

/** Parses and checks every flag; a bad one ends with status 2 naming it, before anything is written. */
function parseFlags(flags: BenchFlags): ParsedFlags {
  const usage = (message: string) => new ExitError(ExitCode.USAGE, message);
  const tasks = intOption("tasks", flags.tasks, { min: 1, max: 10_000_000 });
  const durationMs = flags.duration === undefined ? undefined : parseDuration(flags.duration);
  if (durationMs === null) throw usage(`--duration: expected a duration such as 90s, 10m or 1h30m, got "${flags.duration}"`);
  if (durationMs !== undefined && durationMs > MAX_RUN_MS) throw usage(`--duration: at most 7 days, got "${flags.duration}"`);
  const rate = positiveNumber("rate", flags.rate, 1_000_000);
  const inFlight = intOption("in-flight", flags.inFlight, { min: 1, max: 100_000 });
  if (rate !== undefined && inFlight !== undefined) throw usage("--rate and --in-flight exclude each other: offer a fixed rate (open loop) or keep a number in flight (closed loop)");
  const maxSeconds = positiveNumber("max-seconds", flags.maxSeconds, MAX_RUN_MS / 1000);
  const shape = choiceOption("shape", flags.shape, BENCHMARK_SHAPES);
  const inputSize = intOption("input-size", flags.inputSize, { min: 0, max: 10 * 1024 * 1024 });
  const concurrency = intOption("concurrency", flags.concurrency, { min: 1, max: 10_000 });
  const priority = choiceOption("priority", flags.priority, ["high", "normal", "low"] as const);
  const warmupTasks = intOption("warmup", flags.warmup, { min: 0, max: 1_000_000 });
  const durability = choiceOption("durability", flags.durability, ["full", "normal"] as const);
  if (flags.agent !== undefined && flags.agent.trim() === "") throw usage("--agent: must not be empty");
  let workload: WorkloadSpec;
  let workloadOption: string;
  if (flags.workflow !== undefined) {
    for (const [flag, value] of [["--shape", flags.shape], ["--agent", flags.agent], ["--input-size", flags.inputSize]] as const) {
      if (value !== undefined) throw usage(`${flag}: not with --workflow (the workflow file names each step's agent and input)`);
    }
    workloadOption = `--workflow ${flags.workflow}`;
    try {
      workload = { kind: "workflow", workflow: readWorkflowFile(flags.workflow) as never, priority };
    } catch (error) {
      if (error instanceof WorkloadError) throw usage(error.message);
      throw error;
    }
  } else {
    const agent = flags.agent ?? "echo";
    workloadOption = flags.agent !== undefined ? `--agent ${agent}` : "--shape";
    workload = { kind: "shape", shape: shape ?? "single", agent, inputSize: inputSize ?? 64, priority };
  }
  const run: Omit<BenchmarkOptions, "root"> = {
    mode: "concurrent",
    ...(tasks !== undefined || durationMs === undefined ? { tasks: tasks ?? 1_000 } : {}),
    ...(durationMs !== undefined ? { durationMs } : {}),
    ...(rate !== undefined ? { rateLimitPerSec: rate } : {}),
    ...(inFlight !== undefined ? { inFlight } : {}),
    ...(maxSeconds !== undefined ? { maxSeconds } : {}),
    ...(concurrency !== undefined ? { concurrency } : {}),
    ...(warmupTasks !== undefined ? { warmupTasks } : {}),
    ...(durability !== undefined ? { durability } : {}),
    ...(priority !== undefined ? { priority } : {}),
    ...(workload.kind === "workflow" ? { workflow: workload.workflow as Record<string, unknown> } : { shape: workload.shape, agent: workload.agent, inputSize: workload.inputSize }),
  };
  return { run, workload, workloadOption, inPlace: flags.inPlace === true };
}

/** A number > 0 and ≤ max, or status 2 naming the option. */
function positiveNumber(name: string, value: string | undefined, max: number): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === "" || !Number.isFinite(n) || n <= 0 || n > max) throw new ExitError(ExitCode.USAGE, `--${name}: expected a number > 0 and ≤ ${max}, got "${value}"`);
  return n;
}
