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


/** A lease ended by a reclaim: its owner and epoch before, the step's epoch after. */
export interface ReclaimedLease {
  from_node: string | null;
  from_epoch: number;
  /** 0 when a reclaim of a DEAD node's steps ended the lease (it is taken at once, not at expiry). */
  expired_at: number;
  to_epoch: number;
}

/** The ownership event of a reclaim: which kind, and its details (epochs before and after, where the step went). */
export function reclaimEvent(r: ReclaimedLease, status: string): { kind: string; detailsJson: string } {
  return {
    kind: r.expired_at === 0 ? "dead-owner-reclaim" : "expired-lease-reclaim",
    detailsJson: JSON.stringify({
      fromLeaseEpoch: r.from_epoch, toLeaseEpoch: r.to_epoch, toStatus: status,
      ...(r.expired_at === 0 ? {} : { leaseExpiredAtMs: r.expired_at }),
    }),
  };
}
