// Claim rules shared by every store.

/**
 * How many quota picks count as anti-starvation picks (`low_starvation_count`): quota picks
 * of a class taken while a higher class had steps waiting (claimed by the rest of the
 * claim, or left over).
 */
export function countForced(quotaTaken: readonly number[], highestRest: number, backlog: readonly boolean[]): number {
  let forced = 0;
  for (let c = 0; c < 2; c++) if (highestRest > c || backlog.some((b, h) => b && h > c)) forced += quotaTaken[c]!;
  return forced;
}

