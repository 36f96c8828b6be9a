import cliProgress from "cli-progress";
import type { LiveFigures, Sample } from "./recorder.js";

/**
 * The live line of a benchmark run on a terminal (stderr): progress, completed/s now and
 * overall, p50/p99 so far, failures and resident memory, redrawn with every sample.
 * `total` counts tasks, or seconds for a run by duration.
 */
export class LiveLine {
  readonly #bar: cliProgress.SingleBar;
  readonly #byTime: boolean;

  readonly #total: number;

  constructor(total: number, byTime: boolean) {
    this.#byTime = byTime;
    this.#total = total;
    this.#bar = new cliProgress.SingleBar({
      stream: process.stderr, hideCursor: true, clearOnComplete: false, fps: 4, barsize: 20,
      format: `{bar} {progress} | {now}/s now, {overall}/s overall | p50 {p50} p99 {p99} ms | failures {failures} | RSS {rss} MB`,
    }, cliProgress.Presets.shades_classic);
    this.#bar.start(total, 0, { progress: byTime ? `0s/${total}s` : `0/${total} done`, now: "-", overall: "-", p50: "-", p99: "-", failures: 0, rss: "-" });
  }

  update(sample: Sample, live: LiveFigures): void {
    const ms = (v: number | null) => (v === null ? "-" : v < 10 ? v.toFixed(2) : v.toFixed(1));
    const value = this.#byTime ? Math.floor(live.elapsedMs / 1000) : live.completed;
    this.#bar.update(value, {
      progress: this.#byTime ? `${value}s/${this.#total}s, ${live.completed} done` : `${live.completed}/${this.#total} done`,
      now: sample.completedPerSec.toFixed(0), overall: live.overallPerSec.toFixed(0),
      p50: ms(live.p50Ms), p99: ms(live.p99Ms), failures: live.failedTasks, rss: sample.rssMb.toFixed(0),
    });
  }

  stop(): void {
    this.#bar.stop();
  }
}
