import type { ClaimRequest } from "../store/types.js";

/**
 * Strict priority order (high, normal, low) with an anti-starvation guard: a class that has
 * waited while `maxPicks` picks went to higher classes gets the next pick (a forced pick,
 * counted). The counters live across claims, so the guard holds over a stream of small batches.
 *
 * The picker never runs inside a store transaction: `plan` turns its counters into a claim
 * request (quotas for starving classes), and `record` moves the counters by what the committed
 * claim actually took.
 */
export class PriorityPicker {
  readonly #maxPicks: number;
  /** Per class (0 low, 1 normal, 2 high): higher picks made while it had work waiting. */
  readonly #skipped = [0, 0, 0];

  constructor(maxPicks: number) {
    this.#maxPicks = maxPicks;
  }

  /** The claim for up to `limit` steps: a quota for each class that would be forced within it. */
  plan(limit: number): ClaimRequest {
    const skipped = [...this.#skipped];
    const quotas: [number, number, number] = [0, 0, 0];
    // Assumes every class has work: a quota the store cannot fill simply goes to the others.
    for (let i = 0; i < limit; i++) {
      let choice = 2;
      for (let c = 0; c < 2; c++) if (skipped[c]! >= this.#maxPicks) { choice = c; quotas[c]++; break; }
      skipped[choice] = 0;
      for (let c = 0; c < choice; c++) skipped[c]!++;
    }
    return quotas[0] + quotas[1] > 0 ? { limit, quotas } : { limit };
  }

  /**
   * Moves the counters by a committed claim and returns the dispatch order (indices into
   * `claimed`): the classes of the claimed steps in claim order (oldest first within a class),
   * and which classes still had READY steps after it. The order interleaves forced picks where
   * the guard places them, not all at the front.
   */
  record(claimed: readonly number[], backlog: readonly [boolean, boolean, boolean]): number[] {
    const queues: number[][] = [[], [], []];
    claimed.forEach((p, i) => queues[p]!.push(i));
    const left = queues.map((q) => q.length);
    const order: number[] = [];
    while (order.length < claimed.length) {
      let choice = -1;
      for (let c = 0; c < 2; c++) if (left[c]! > 0 && this.#skipped[c]! >= this.#maxPicks) { choice = c; break; }
      if (choice < 0) for (let c = 2; c >= 0; c--) if (left[c]! > 0) { choice = c; break; }
      left[choice]!--;
      order.push(queues[choice]!.shift()!);
      this.#skipped[choice] = 0;
      for (let c = 0; c < choice; c++) this.#skipped[c] = left[c]! > 0 || backlog[c] ? this.#skipped[c]! + 1 : 0;
    }
    if (claimed.length === 0) for (let c = 0; c < 3; c++) if (!backlog[c]) this.#skipped[c] = 0;
    return order;
  }
}
