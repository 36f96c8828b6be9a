import { z } from "zod";

/** The longest delay Node.js timers honour: 2^31-1 ms (about 24.8 days); a longer one fires at once. */
export const MAX_TIMER_MS = 2_147_483_647;

/** A duration in whole milliseconds, from `min` up to MAX_TIMER_MS. Every duration RelayMesh reads uses it. */
export function durationMs(min = 0) {
  return z.number().int().min(min).max(MAX_TIMER_MS, `must be at most ${MAX_TIMER_MS} ms (2^31-1, the longest timer Node.js honours)`);
}
