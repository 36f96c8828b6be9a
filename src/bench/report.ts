import type { Settings, WorkflowSpec } from "../index.js";
import type { MachineFacts } from "./machine.js";
import type { FailureFigures, Sample, StepFigures } from "./recorder.js";
import type { BenchmarkMode } from "./runner.js";
import type { Stability } from "./stability.js";
import type { BenchmarkShape } from "./workload.js";

/** Why submitting stopped. */
export type StopReason = "tasks" | "duration" | "interrupt" | "max-seconds";

/** What `runBenchmark()` measured. Durations in seconds, latencies in milliseconds. */
export interface BenchmarkReport {
  /** Format of this document (bumped when a field changes meaning). */
  reportVersion: 2;
  runId: string;
  relaymeshVersion: string;
  startedAt: string;
  finishedAt: string;
  /** Tasks requested, or the tasks submitted (accepted or not) in a run by duration. */
  tasks: number;
  /** Tasks requested (null: a run by duration). */
  tasksRequested: number | null;
  durationSeconds: number | null;
  /** Tasks whose submission was committed. */
  submitted: number;
  /** Tasks that reached a terminal status within the run. */
  finished: number;
  stoppedBy: StopReason;
  /** `shape:<name>` or `workflow:<name>`. */
  workload: string;
  shape: BenchmarkShape | null;
  agent: string | null;
  /** The workflow every task submitted. */
  workflow: WorkflowSpec;
  mode: BenchmarkMode;
  /** Open loop (a fixed offered rate) or closed loop (a fixed number of submissions in flight). */
  load: { model: "open"; ratePerSec: number } | { model: "closed"; inFlight: number };
  stepsPerTask: number;
  concurrency: number;
  inputSize: number | null;
  /** Offered rate, when `rateLimitPerSec` was given. */
  offeredPerSec: number | null;
  warmupTasks: number;
  /** First measured submission to the end of the run. */
  seconds: number;
  /** The submission phase (all of it, also in `concurrent` mode). */
  enqueueSeconds: number;
  /** The window throughput is measured over: the drain (enqueue-then-drain) or the whole run (concurrent). */
  drainSeconds: number;
  /** Finished tasks (workflows) per second over `drainSeconds`. */
  throughputPerSec: number;
  /** Succeeded steps per second over `drainSeconds` (SUCCESS tasks × steps per task). */
  stepsPerSec: number;
  /** Committed submissions per second over `enqueueSeconds`. */
  enqueuePerSec: number;
  /** End to end: each task's due time (open loop) or submit call (closed loop) to its `task:finished`, over finished tasks. */
  latencyMs: { p50: number; p90: number; p95: number; p99: number; max: number; mean: number };
  /** Per step: queue wait vs run time vs commit wait. */
  steps: StepFigures[];
  failures: FailureFigures;
  /** Terminal statuses, plus `UNFINISHED` (submitted, not finished in time) and `SUBMIT_FAILED`. */
  statuses: Record<string, number>;
  /** Tasks requested (or submitted, when stopped early by the user or a duration) that did not end SUCCESS. */
  notSucceeded: number;
  /** The run hit `maxSeconds`. */
  capped: boolean;
  /** Up to 5 distinct submission errors. */
  errors: string[];
  /** Throughput, latency, memory and CPU every `sampleIntervalMs`. */
  series: Sample[];
  sampleIntervalMs: number;
  resources: { rssMb: { start: number; peak: number; end: number }; heapUsedMb: { start: number; peak: number; end: number }; cpuPctMean: number };
  /** First third of the run against the last third: is latency, throughput and memory flat? */
  stability: Stability;
  /** Settings in force (the root's file, overridden by the run's options). */
  settings: Settings;
  durability: "full" | "normal";
  store: string;
  machine: MachineFacts;
  /** Resident set size after the run, before the engine closed. */
  rssMb: number;
  node: string;
  cpus: number;
}
