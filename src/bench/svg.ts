/** One line of a chart: points (x, y), a null y leaving a gap. */
export interface ChartSeries {
  name: string;
  color: string;
  points: [number, number | null][];
  dashed?: boolean;
  /** How points merged for drawing combine (default "mean"): "max" keeps peaks visible. */
  reduce?: "mean" | "max";
}

export interface LineChartOptions {
  title: string;
  yLabel: string;
  series: ChartSeries[];
  /** Formats x values on the axis (default: as numbers). */
  formatX?: (x: number) => string;
  /** Tick values of the x axis between its ends (default: about five round numbers). */
  xTicks?: (min: number, max: number) => number[];
  width?: number;
  height?: number;
}

/** Points drawn per line at most; longer series are merged into this many buckets. */
const MAX_POINTS = 600;

/** Escapes text for HTML and SVG. */
export function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** A line chart as inline SVG (no script, no external resource). */
export function lineChart(o: LineChartOptions): string {
  const width = o.width ?? 880;
  const height = o.height ?? 260;
  const pad = { left: 64, right: 16, top: 28, bottom: 40 };
  const series = o.series.map((s) => ({ ...s, points: downsample(s.points, s.reduce ?? "mean") }));
  const xs = series.flatMap((s) => s.points.map((p) => p[0]));
  const ys = series.flatMap((s) => s.points.flatMap((p) => (p[1] === null || !Number.isFinite(p[1]) ? [] : [p[1]])));
  const xMin = xs.length > 0 ? Math.min(...xs) : 0;
  const xMax = xs.length > 0 ? Math.max(...xs, xMin + 1e-9) : 1;
  const yTicks = ticks(0, ys.length > 0 ? Math.max(...ys) : 1);
  const yMax = yTicks.at(-1)!;
  const plotW = width - pad.left - pad.right;
  const plotH = height - pad.top - pad.bottom;
  const sx = (x: number) => pad.left + (xMax === xMin ? plotW / 2 : ((x - xMin) / (xMax - xMin)) * plotW);
  const sy = (y: number) => pad.top + plotH - (y / yMax) * plotH;
  const fx = o.formatX ?? ((x: number) => String(x));
  const parts: string[] = [];
  parts.push(`<svg viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img" aria-label="${escapeXml(o.title)}">`);
  parts.push(`<text x="${pad.left}" y="16" class="title">${escapeXml(o.title)}</text>`);
  for (const t of yTicks) {
    parts.push(`<line x1="${pad.left}" x2="${width - pad.right}" y1="${f(sy(t))}" y2="${f(sy(t))}" class="grid"/>`);
    parts.push(`<text x="${pad.left - 6}" y="${f(sy(t) + 4)}" class="tick" text-anchor="end">${escapeXml(formatNumber(t))}</text>`);
  }
  for (const t of (o.xTicks ?? ((a, b) => ticks(a, b, true)))(xMin, xMax)) {
    if (t < xMin || t > xMax) continue;
    parts.push(`<text x="${f(sx(t))}" y="${height - pad.bottom + 16}" class="tick" text-anchor="middle">${escapeXml(fx(t))}</text>`);
  }
  parts.push(`<text x="14" y="${pad.top + plotH / 2}" class="tick" transform="rotate(-90 14 ${pad.top + plotH / 2})" text-anchor="middle">${escapeXml(o.yLabel)}</text>`);
  parts.push(`<rect x="${pad.left}" y="${pad.top}" width="${plotW}" height="${plotH}" class="frame"/>`);
  let legendX = pad.left;
  for (const s of series) {
    const d = pathOf(s.points, sx, sy);
    if (d) parts.push(`<path d="${d}" fill="none" stroke="${s.color}" stroke-width="1.6"${s.dashed ? ' stroke-dasharray="4 3"' : ""}/>`);
    if (s.points.length === 1 && s.points[0]![1] !== null) parts.push(`<circle cx="${f(sx(s.points[0]![0]))}" cy="${f(sy(s.points[0]![1]!))}" r="3" fill="${s.color}"/>`);
    parts.push(`<rect x="${legendX}" y="${height - 14}" width="12" height="4" fill="${s.color}"/>`);
    parts.push(`<text x="${legendX + 16}" y="${height - 9}" class="tick">${escapeXml(s.name)}</text>`);
    legendX += 24 + s.name.length * 7;
  }
  parts.push("</svg>");
  return parts.join("");
}

/** Horizontal stacked bars, one per row (e.g. a step's queue wait, run and commit time). */
export function stackedBars(o: { title: string; unit: string; rows: { label: string; values: number[] }[]; parts: { name: string; color: string }[]; width?: number }): string {
  const width = o.width ?? 880;
  const rowH = 22;
  const pad = { left: 140, right: 90, top: 28, bottom: 24 };
  const height = pad.top + o.rows.length * rowH + pad.bottom;
  const max = Math.max(1e-9, ...o.rows.map((r) => r.values.reduce((a, b) => a + b, 0)));
  const scale = (width - pad.left - pad.right) / max;
  const parts = [`<svg viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img" aria-label="${escapeXml(o.title)}">`];
  parts.push(`<text x="${pad.left}" y="16" class="title">${escapeXml(o.title)}</text>`);
  o.rows.forEach((r, i) => {
    const y = pad.top + i * rowH;
    parts.push(`<text x="${pad.left - 6}" y="${y + 15}" class="tick" text-anchor="end">${escapeXml(r.label)}</text>`);
    let x = pad.left;
    r.values.forEach((v, k) => {
      const w = Math.max(0, v * scale);
      parts.push(`<rect x="${f(x)}" y="${y + 3}" width="${f(w)}" height="${rowH - 6}" fill="${o.parts[k]!.color}"><title>${escapeXml(`${o.parts[k]!.name}: ${formatNumber(v)} ${o.unit}`)}</title></rect>`);
      x += w;
    });
    parts.push(`<text x="${f(x + 6)}" y="${y + 15}" class="tick">${escapeXml(`${formatNumber(r.values.reduce((a, b) => a + b, 0))} ${o.unit}`)}</text>`);
  });
  let legendX = pad.left;
  for (const p of o.parts) {
    parts.push(`<rect x="${legendX}" y="${height - 14}" width="12" height="4" fill="${p.color}"/><text x="${legendX + 16}" y="${height - 9}" class="tick">${escapeXml(p.name)}</text>`);
    legendX += 24 + p.name.length * 7;
  }
  parts.push("</svg>");
  return parts.join("");
}

function pathOf(points: [number, number | null][], sx: (x: number) => number, sy: (y: number) => number): string {
  let d = "";
  let pen = false;
  for (const [x, y] of points) {
    if (y === null || !Number.isFinite(y)) { pen = false; continue; }
    d += `${pen ? "L" : "M"}${f(sx(x))},${f(sy(y))}`;
    pen = true;
  }
  return d;
}

function downsample(points: [number, number | null][], reduce: "mean" | "max"): [number, number | null][] {
  if (points.length <= MAX_POINTS) return points;
  const size = Math.ceil(points.length / MAX_POINTS);
  const out: [number, number | null][] = [];
  for (let i = 0; i < points.length; i += size) {
    const bucket = points.slice(i, i + size);
    const ys = bucket.flatMap((p) => (p[1] === null ? [] : [p[1]]));
    const y = ys.length === 0 ? null : reduce === "max" ? Math.max(...ys) : ys.reduce((a, b) => a + b, 0) / ys.length;
    out.push([bucket.at(-1)![0], y]);
  }
  return out;
}

/** About five round tick values covering [lo, hi]; the last one at or above hi. */
function ticks(lo: number, hi: number, inside = false): number[] {
  const span = hi - lo > 0 ? hi - lo : Math.abs(hi) || 1;
  const raw = span / 5;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => span / s <= 6)!;
  const out: number[] = [];
  const start = Math.ceil(lo / step) * step;
  for (let v = inside ? start : Math.floor(lo / step) * step; v <= hi + 1e-9; v += step) out.push(round(v));
  if (!inside && out.at(-1)! < hi) out.push(round(out.at(-1)! + step));
  return out.length > 0 ? out : [lo];
}

function round(v: number): number {
  return Number(v.toPrecision(12));
}

export function formatNumber(v: number): string {
  if (!Number.isFinite(v)) return "-";
  const a = Math.abs(v);
  if (a >= 1e6) return `${(v / 1e6).toFixed(a >= 1e7 ? 0 : 1)}M`;
  if (a >= 1e4) return `${(v / 1e3).toFixed(0)}k`;
  if (a >= 100) return v.toFixed(0);
  if (a >= 10) return v.toFixed(1).replace(/\.0$/, "");
  return v.toFixed(2).replace(/\.?0+$/, "") || "0";
}

function f(n: number): string {
  return n.toFixed(1);
}
