import { createHash } from "node:crypto";
import type { Settings } from "./settings.js";

/** A hash per field: enough to tell what changed without keeping any value (settings may hold secrets). */
export type SettingsFingerprint = Record<string, string>;

export function fingerprint(settings: Settings): SettingsFingerprint {
  return Object.fromEntries(Object.entries(settings).map(([k, v]) => [k, createHash("sha256").update(JSON.stringify(v)).digest("hex").slice(0, 16)]));
}

/** Names of the fields whose values differ, sorted. */
export function changedFields(before: SettingsFingerprint, after: SettingsFingerprint): string[] {
  const keys = new Set([...Object.keys(before), ...Object.keys(after)]);
  return [...keys].filter((k) => before[k] !== after[k]).sort();
}
