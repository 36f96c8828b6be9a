import type { ClaimPicker } from "../store/types.js";

/**
 * Strict priority order (high, normal, low) with an anti-starvation guard: a class that has
 * waited while `maxPicks` picks went to higher classes gets the next pick (a forced pick,
 * counted). The counters live across claims, so the guard holds over a stream of small batches.
 */
export class PriorityPicker implements ClaimPicker {
  readonly #maxPicks: number;
  /** Per class (0 low, 1 normal, 2 high): higher picks made while it had work waiting. */
  readonly #skipped = [0, 0, 0];

  constructor(maxPicks: number) {
    this.#maxPicks = maxPicks;
  }

  pick(available: readonly [number, number, number], limit: number): { order: number[]; forced: number } {
    const left = [available[0], available[1], available[2]];
    const order: number[] = [];
    let forced = 0;
    while (order.length < limit) {
      let choice = -1;
      for (let c = 0; c < 2; c++) {
        if (left[c]! > 0 && this.#skipped[c]! >= this.#maxPicks) { choice = c; forced++; break; }
      }
      if (choice < 0) for (let c = 2; c >= 0; c--) if (left[c]! > 0) { choice = c; break; }
      if (choice < 0) break;
      left[choice]!--;
      order.push(choice);
      this.#skipped[choice] = 0;
      for (let c = 0; c < choice; c++) this.#skipped[c] = left[c]! > 0 ? this.#skipped[c]! + 1 : 0;
    }
    return { order, forced };
  }
}
