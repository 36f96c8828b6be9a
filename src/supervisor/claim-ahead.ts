/**
 * How many steps a node claims beyond its running slots (prefetch), by Little's law: while a
 * group commit is being written the slots must not run dry, so a node keeps about
 * `concurrency × commit time ÷ step time` steps in hand, twice over (results of one commit's
 * worth of steps ride on the next). Very short steps on a store whose commits cost network
 * round trips (PostgreSQL) get up to the ceiling, so that each commit carries many steps; steps
 * that run much longer than a commit get next to none, so a node does not sit on steps that
 * idle nodes could run. Until both times are known, none: a node that has run nothing yet
 * cannot tell whether held steps would help it, and holding them keeps them from idle nodes (a
 * fresh node taking over a dead node's three-second steps held twice its slots while another
 * node sat idle). An explicit `prefetch` option fixes the figure instead.
 */
export class ClaimAhead {
  static readonly CEILING_PER_SLOT = 16;
  /** Weight of the newest sample in the moving averages. */
  static readonly ALPHA = 0.1;
  #commitMs: number | null = null;
  #stepMs: number | null = null;

  constructor(readonly concurrency: number, readonly fixed: number | null) {}

  /** A group commit that carried step results or claims took `ms`. */
  commitTook(ms: number): void {
    this.#commitMs = this.#commitMs === null ? ms : this.#commitMs + ClaimAhead.ALPHA * (ms - this.#commitMs);
  }

  /** A step attempt ran for `ms` (from its hand-off to the pool to its result). */
  stepTook(ms: number): void {
    this.#stepMs = this.#stepMs === null ? ms : this.#stepMs + ClaimAhead.ALPHA * (ms - this.#stepMs);
  }

  get prefetch(): number {
    if (this.fixed !== null) return this.fixed;
    if (this.#commitMs === null || this.#stepMs === null) return 0;
    const wanted = Math.ceil((2 * this.concurrency * this.#commitMs) / Math.max(this.#stepMs, 0.01));
    return Math.min(ClaimAhead.CEILING_PER_SLOT * this.concurrency, wanted);
  }
}
