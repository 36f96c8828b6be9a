import { mkdtempSync, rmSync } from "node:fs";
import { basename, join } from "node:path";
import cliProgress from "cli-progress";
import { BENCHMARK_SHAPES, runBenchmark } from "../../bench/runner.js";
import { writeJsonFile } from "../../ops/exports.js";
import { defaultRoot, ensureRoot, rootPaths } from "../../root.js";
import { dropScratchStore, scratchStoreUrl } from "../../store/open.js";
import { ExitCode } from "../errors.js";
import { choiceOption, intOption, numberOption, type CommandResult, type GlobalOptions } from "../context.js";

export interface BenchFlags {
  tasks?: string;
  shape?: string;
  inputSize?: string;
  concurrency?: string;
  maxSeconds?: string;
  reportOut?: string;
}

/**
 * A sustained run in a scratch root beside the given one (`<root>/reports/bench-*`, removed
 * afterwards), so benchmark tasks never mix with real ones; the report is kept in reports/.
 */
export default async function bench(globals: GlobalOptions, flags: BenchFlags): Promise<CommandResult> {
  const tasks = intOption("tasks", flags.tasks, { min: 1, max: 10_000_000 }) ?? 1_000;
  const shape = choiceOption("shape", flags.shape, BENCHMARK_SHAPES) ?? "single";
  const inputSize = intOption("input-size", flags.inputSize, { min: 0, max: 10 * 1024 * 1024 }) ?? 64;
  const concurrency = intOption("concurrency", flags.concurrency, { min: 1, max: 10_000 }) ?? 8;
  const maxSeconds = numberOption("max-seconds", flags.maxSeconds) ?? 300;
  const paths = rootPaths(globals.root ?? defaultRoot());
  ensureRoot(paths);
  const scratch = mkdtempSync(join(paths.reportsDir, "bench-"));
  // Benchmark tasks never mix with real ones: a scratch store beside the root's (a schema of its own on PostgreSQL).
  const store = scratchStoreUrl(globals.store ?? (process.env.RELAYMESH_STORE || undefined), `bench_${basename(scratch).slice(6).toLowerCase()}`, scratch);
  const bar = process.stderr.isTTY
    ? new cliProgress.SingleBar({ stream: process.stderr, format: "{bar} {value}/{total} tasks | {eta_formatted} left", hideCursor: true }, cliProgress.Presets.shades_classic)
    : null;
  bar?.start(tasks, 0);
  let shown = 0;
  try {
    const report = await runBenchmark({
      root: scratch, store, tasks, shape, inputSize, concurrency, maxSeconds, mode: "concurrent",
      onProgress: (done) => {
        if (bar && (done - shown >= Math.max(1, tasks / 200) || done === tasks)) { bar.update(done); shown = done; }
      },
    });
    bar?.stop();
    const out = writeJsonFile(flags.reportOut ?? join(paths.reportsDir, `bench-${new Date().toISOString().replace(/[:.]/g, "-")}.json`), report);
    const l = report.latencyMs;
    return {
      data: { ...report, reportOut: out },
      human: `${report.finished}/${report.tasks} ${shape} tasks in ${report.seconds.toFixed(2)}s: ${report.throughputPerSec.toFixed(0)} tasks/s, ` +
        `${report.stepsPerSec.toFixed(0)} steps/s; latency p50 ${l.p50.toFixed(1)} ms, p95 ${l.p95.toFixed(1)} ms, p99 ${l.p99.toFixed(1)} ms` +
        `${report.notSucceeded > 0 ? `; ${report.notSucceeded} did not succeed` : ""}\nreport: ${out}`,
      exitCode: report.notSucceeded > 0 ? ExitCode.FAILED : ExitCode.OK,
    };
  } finally {
    bar?.stop();
    await dropScratchStore(store);
    rmSync(scratch, { recursive: true, force: true });
  }
}
