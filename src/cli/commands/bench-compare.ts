import { z } from "zod";
import { compareReports, ComparableReportSchema, type ComparableReport, type ComparisonRow } from "../../bench/compare.js";
import { readJsonFile } from "../../model/json-file.js";
import { InvalidInputError } from "../../errors.js";
import { ExitCode, ExitError } from "../errors.js";
import type { CommandResult, GlobalOptions } from "../context.js";

/** `bench compare A.json B.json`: two reports side by side, with ratios and whether each difference is beyond the runs' spread. */
export default async function benchCompare(_globals: GlobalOptions, a: string, b: string): Promise<CommandResult> {
  const ra = readReport(a);
  const rb = readReport(b);
  const comparison = compareReports(ra, rb);
  return { data: comparison, human: render(a, b, comparison.rows, comparison.notes) };
}

function readReport(file: string): ComparableReport {
  let raw: unknown;
  try {
    raw = readJsonFile(file);
  } catch (error) {
    throw new ExitError(ExitCode.USAGE, `${file}: ${error instanceof InvalidInputError ? error.problems.map((p) => p.message).join("; ") : (error as Error).message}`);
  }
  if (raw === undefined) throw new ExitError(ExitCode.NOT_FOUND, `${file}: no such file`);
  const parsed = ComparableReportSchema.safeParse(raw);
  if (!parsed.success) throw new ExitError(ExitCode.USAGE, `${file}: not a bench report (${z.prettifyError(parsed.error).replace(/\n\s*/g, " ")})`);
  return parsed.data;
}

function render(a: string, b: string, rows: ComparisonRow[], notes: string[]): string {
  const num = (v: number | null) => (v === null ? "-" : Math.abs(v) >= 100 ? v.toFixed(0) : v.toFixed(2));
  const band = (s: { p25: number; p75: number } | null) => (s ? `${num(s.p25)}–${num(s.p75)}` : "-");
  const table = [["figure", "A", "B", "B/A", "A spread", "B spread", "verdict"]];
  for (const r of rows) {
    const verdict = r.beyondSpread === null ? (r.better === "same" ? "same" : "no spread to judge")
      : r.beyondSpread ? `${r.better === "b" ? "B" : "A"} better, beyond spread` : "within spread";
    table.push([`${r.figure} (${r.unit})`, num(r.a), num(r.b), r.ratio === null ? "-" : `×${r.ratio.toFixed(2)}`, band(r.spreadA), band(r.spreadB), verdict]);
  }
  const widths = table[0]!.map((_, c) => Math.max(...table.map((row) => row[c]!.length)));
  const lines = [`A: ${a}`, `B: ${b}`, "", ...table.map((row) => row.map((cell, c) => (c === 0 || c === 6 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join("  ").trimEnd())];
  if (notes.length > 0) lines.push("", ...notes.map((n) => `note: ${n}`));
  lines.push("", "spread: the interquartile range of each run's per-interval values; \"beyond spread\" when the two ranges do not overlap");
  return lines.join("\n");
}
