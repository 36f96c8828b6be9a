import { createHash } from "node:crypto";
import type { SettingsChange } from "../store/types.js";
import type { AuditLog, AuditRecord } from "./audit.js";

/**
 * Settings changes recorded only in the root's audit log, by roots older than the store's
 * settings history (their `settings.reload` records carry no `entryId`); each gets a stable id
 * from its line, so copies never double it.
 */
export async function legacySettingsHistory(audit: AuditLog): Promise<SettingsChange[]> {
  const records = await audit.query({ action: "settings.reload", limit: 100_000 });
  return records.filter((r) => typeof r.details.entryId !== "string").map((r) => fromAudit(r));
}

/** The store's history and the legacy entries, newest first, at most `limit`. */
export function mergeSettingsHistory(stored: SettingsChange[], legacy: SettingsChange[], limit: number): SettingsChange[] {
  const seen = new Set(stored.map((c) => c.entryId));
  return [...stored, ...legacy.filter((c) => !seen.has(c.entryId))].sort((a, b) => b.atMs - a.atMs).slice(0, limit);
}

function fromAudit(r: AuditRecord): SettingsChange {
  return {
    entryId: `audit-${createHash("sha256").update(JSON.stringify(r)).digest("hex").slice(0, 32)}`,
    atMs: Date.parse(r.timestamp), nodeId: r.actor.startsWith("node:") ? r.actor.slice(5) : null, actor: r.actor,
    result: r.result === "error" ? "error" : "ok", changedFields: (r.details.changedFields as string[] | undefined) ?? [],
    error: typeof r.details.error === "string" ? r.details.error : null,
  };
}
