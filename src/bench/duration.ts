/** Milliseconds per unit of a duration text. */
const UNIT_MS = new Map<string, number>([["ms", 1], ["s", 1_000], ["m", 60_000], ["h", 3_600_000], ["d", 86_400_000]]);

/**
 * Parses a duration such as `90` (seconds), `500ms`, `30s`, `10m`, `1.5h` or `1h30m` into
 * milliseconds. Null when the text is not a duration or is not positive.
 */
export function parseDuration(text: string): number | null {
  const t = text.trim();
  if (/^\d+(\.\d+)?$/.test(t)) return positive(Number(t) * 1_000);
  if (!/^(\d+(\.\d+)?(ms|s|m|h|d))+$/.test(t)) return null;
  let ms = 0;
  for (const [, value, , unit] of t.matchAll(/(\d+(\.\d+)?)(ms|s|m|h|d)/g)) ms += Number(value) * UNIT_MS.get(unit!)!;
  return positive(ms);
}

function positive(ms: number): number | null {
  return Number.isFinite(ms) && ms > 0 ? ms : null;
}

/** `1h 02m 03s`-style text for people. */
export function formatDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  return h > 0 ? `${h}h ${String(m).padStart(2, "0")}m ${String(sec).padStart(2, "0")}s` : m > 0 ? `${m}m ${String(sec).padStart(2, "0")}s` : `${sec}s`;
}
