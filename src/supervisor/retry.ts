/** Retry policy of one step, resolved at submission (step > agent policy > settings). */
export interface RetryPolicy {
  maxAttempts: number;
  baseBackoffMs: number;
  maxBackoffMs: number;
}

/**
 * Delay before the attempt after `attempt` failed: exponential (base · 2^(attempt-1)), capped at
 * `maxBackoffMs`, with "equal jitter" — uniformly in [cap/2, cap] — so retries of many steps
 * that failed together spread out without ever retrying immediately.
 */
export function backoffMs(attempt: number, policy: Pick<RetryPolicy, "baseBackoffMs" | "maxBackoffMs">, random: () => number = Math.random): number {
  const exp = Math.min(policy.maxBackoffMs, policy.baseBackoffMs * 2 ** Math.max(0, Math.min(attempt - 1, 52)));
  return Math.round(exp / 2 + random() * (exp / 2));
}
