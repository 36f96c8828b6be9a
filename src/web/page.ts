/**
 * The console page: plain HTML and one inline script (allowed by its CSP nonce), no build step.
 * Data is inserted with textContent / createElement only, never as HTML.
 */
export function renderPage(nonce: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>RelayMesh console</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:14px system-ui,sans-serif;margin:0;color:#222}header{background:#1f2937;color:#fff;padding:8px 16px;display:flex;gap:16px;align-items:center}
main{display:grid;grid-template-columns:minmax(420px,1fr) 1fr;gap:16px;padding:16px}section{border:1px solid #ddd;border-radius:6px;padding:8px 12px;overflow:auto}
table{border-collapse:collapse;width:100%}td,th{text-align:left;padding:3px 6px;border-bottom:1px solid #eee;font-size:13px}tr.task{cursor:pointer}tr.task:hover{background:#f3f4f6}
.s-SUCCESS{color:#15803d}.s-DEAD_LETTER{color:#b91c1c}.s-CANCELLED{color:#6b7280}.s-RUNNING,.s-LEASED{color:#1d4ed8}.s-PENDING,.s-READY,.s-RETRY_WAIT{color:#a16207}
button{cursor:pointer}#msg{color:#b91c1c}code{font-size:12px}svg text{font-size:11px}
</style></head>
<body>
<header><strong>RelayMesh</strong><span id="stats">…</span><span id="live">offline</span><span id="msg" role="alert"></span></header>
<main>
<section><h2>Tasks</h2>
<label>Status <select id="status-filter"><option value="">all</option><option>PENDING</option><option>RUNNING</option><option>SUCCESS</option><option>DEAD_LETTER</option><option>CANCELLED</option></select></label>
<span id="total"></span>
<table><thead><tr><th>Task</th><th>Name</th><th>Status</th><th>Priority</th><th>Updated</th></tr></thead><tbody id="tasks"></tbody></table>
<h2>Dead letters</h2><button id="replay-batch">Replay all dead letters</button>
<table><thead><tr><th>Task</th><th>Name</th><th>Failed step</th><th></th></tr></thead><tbody id="dead"></tbody></table>
<h2>Schedules</h2>
<table><thead><tr><th>Name</th><th>Cron</th><th>Next</th><th>Last task</th><th>Fired / skipped</th></tr></thead><tbody id="schedules"></tbody></table>
</section>
<section id="detail"><h2>Task <code id="detail-id">—</code> <span id="detail-status"></span></h2>
<div><button id="cancel-btn" disabled>Cancel</button> <button id="replay-btn" disabled>Replay</button></div>
<svg id="dag" width="100%" height="0"></svg>
<table><thead><tr><th>Step</th><th>Agent</th><th>Status</th><th>Attempt</th><th>Depends on</th><th>Waiting for</th><th>Output / error</th></tr></thead><tbody id="steps"></tbody></table>
</section>
</main>
<script nonce="${nonce}">
"use strict";
const token = new URLSearchParams(location.search).get("token");
const $ = (id) => document.getElementById(id);
let current = null;
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(c == null ? "" : String(c)));
  return e;
}
async function api(path, init) {
  const headers = Object.assign({}, init && init.headers, token ? { authorization: "Bearer " + token } : {});
  const res = await fetch(path, Object.assign({}, init, { headers }));
  const body = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error((body.error && body.error.message) || res.status + " " + res.statusText);
  return body;
}
function say(text) { $("msg").textContent = text || ""; }
const when = (ms) => ms ? new Date(ms).toLocaleTimeString() : "";
async function loadTasks() {
  const status = $("status-filter").value;
  const q = new URLSearchParams({ limit: "100" });
  if (status) q.set("status", status);
  const { tasks, total } = await api("/api/tasks?" + q);
  $("total").textContent = tasks.length + " of " + total;
  $("tasks").replaceChildren(...tasks.map((t) => {
    const row = el("tr", { class: "task", "data-task-id": t.taskId }, el("td", {}, el("code", {}, t.taskId)), el("td", {}, t.name || ""),
      el("td", { class: "s-" + t.status }, t.status), el("td", {}, t.priority), el("td", {}, when(t.updatedAtMs)));
    row.addEventListener("click", () => openTask(t.taskId));
    return row;
  }));
}
async function loadDead() {
  const { tasks } = await api("/api/dead?limit=50");
  $("dead").replaceChildren(...tasks.map((t) => {
    const failed = t.steps.find((s) => s.status === "DEAD_LETTER") || {};
    const button = el("button", {}, "Replay");
    button.addEventListener("click", () => write("/api/replay", { taskId: t.taskId }));
    return el("tr", { "data-task-id": t.taskId }, el("td", {}, el("code", {}, t.taskId)), el("td", {}, t.name || ""),
      el("td", {}, (failed.stepId || "") + (failed.error ? ": " + failed.error.message : "")), el("td", {}, button));
  }));
}
async function loadSchedules() {
  const { schedules } = await api("/api/schedules");
  $("schedules").replaceChildren(...schedules.map((s) => el("tr", {}, el("td", {}, s.name), el("td", {}, s.cron + (s.timezone ? " (" + s.timezone + ")" : "")),
    el("td", {}, s.paused ? "paused" : s.nextAtMs ? new Date(s.nextAtMs).toISOString() : "-"),
    el("td", {}, s.lastTaskId ? el("code", {}, s.lastTaskId) : "-"), el("td", {}, s.firedCount + " / " + s.skippedCount))));
  for (const [i, s] of schedules.entries()) if (s.lastTaskId) $("schedules").children[i].addEventListener("click", () => openTask(s.lastTaskId));
}
async function loadStats() {
  const s = await api("/api/stats");
  $("stats").textContent = Object.entries(s.tasks).map(([k, v]) => k + " " + v).join(" · ");
}
function drawDag(steps, edges) {
  const svg = $("dag"), NS = "http://www.w3.org/2000/svg";
  // Maps, not objects: step ids are user input (__proto__ is a valid id). Layers by Kahn's order, no recursion.
  const layer = new Map(steps.map((s) => [s.stepId, 0])), out = new Map(steps.map((s) => [s.stepId, []])), waiting = new Map(steps.map((s) => [s.stepId, 0]));
  for (const [from, to] of edges) if (out.has(from) && out.has(to)) { out.get(from).push(to); waiting.set(to, waiting.get(to) + 1); }
  const ready = steps.filter((s) => waiting.get(s.stepId) === 0).map((s) => s.stepId);
  for (let i = 0; i < ready.length; i++) {
    for (const to of out.get(ready[i])) {
      layer.set(to, Math.max(layer.get(to), layer.get(ready[i]) + 1));
      waiting.set(to, waiting.get(to) - 1);
      if (waiting.get(to) === 0) ready.push(to);
    }
  }
  const columns = [];
  for (const s of steps) (columns[layer.get(s.stepId)] = columns[layer.get(s.stepId)] || []).push(s);
  const pos = new Map(), W = 140, H = 40;
  columns.forEach((col, x) => col.forEach((s, y) => { pos.set(s.stepId, { x: 10 + x * (W + 40), y: 10 + y * (H + 16) }); }));
  const rows = columns.reduce((m, c) => Math.max(m, c.length), 1);
  svg.setAttribute("height", String(20 + rows * (H + 16)));
  const node = (tag, attrs) => { const e = document.createElementNS(NS, tag); for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v)); return e; };
  const parts = [];
  for (const [from, to] of edges) {
    const a = pos.get(from), b = pos.get(to);
    if (a && b) parts.push(node("line", { x1: a.x + W, y1: a.y + H / 2, x2: b.x, y2: b.y + H / 2, stroke: "#999" }));
  }
  for (const s of steps) {
    const p = pos.get(s.stepId), g = node("g", { class: "s-" + s.status, "data-step-id": s.stepId });
    g.append(node("rect", { x: p.x, y: p.y, width: W, height: H, rx: 5, fill: "#f9fafb", stroke: "currentColor" }));
    const label = node("text", { x: p.x + 6, y: p.y + 16, fill: "#111" }); label.textContent = s.stepId;
    const status = node("text", { x: p.x + 6, y: p.y + 32, fill: "currentColor" }); status.textContent = s.status;
    g.append(label, status);
    parts.push(g);
  }
  svg.replaceChildren(...parts);
}
async function openTask(id) {
  current = id;
  const [task, wf] = await Promise.all([api("/api/tasks/" + encodeURIComponent(id)), api("/api/workflow/" + encodeURIComponent(id))]);
  if (current !== id) return;
  $("detail-id").textContent = task.taskId + (task.name ? " (" + task.name + ")" : "");
  $("detail-status").textContent = task.status;
  $("detail-status").className = "s-" + task.status;
  $("cancel-btn").disabled = !(task.status === "PENDING" || task.status === "RUNNING");
  $("replay-btn").disabled = task.status !== "DEAD_LETTER";
  $("steps").replaceChildren(...task.steps.map((s) => el("tr", {}, el("td", {}, s.stepId), el("td", {}, s.agent), el("td", { class: "s-" + s.status }, s.status),
    el("td", {}, s.attempt + "/" + s.maxAttempts), el("td", {}, s.dependsOn.join(", ")), el("td", {}, s.waitingFor || ""),
    el("td", {}, s.error && s.status !== "SUCCESS" ? s.error.message : s.output === null ? "" : JSON.stringify(s.output).slice(0, 200)))));
  drawDag(wf.steps, wf.edges);
}
async function write(path, params) {
  try {
    say("");
    await api(path, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(params) });
    await refresh();
  } catch (e) { say(e.message); }
}
async function refresh() {
  try {
    await Promise.all([loadTasks(), loadDead(), loadStats(), loadSchedules(), current ? openTask(current) : null]);
  } catch (e) { say(e.message); }
}
let pending = null;
function soon() { if (!pending) pending = setTimeout(() => { pending = null; refresh(); }, 200); }
$("status-filter").addEventListener("change", refresh);
$("cancel-btn").addEventListener("click", () => { if (current && confirm("Cancel task " + current + "?")) write("/api/cancel", { taskId: current, mode: "hard", reason: "cancelled from the web console" }); });
$("replay-btn").addEventListener("click", () => { if (current) write("/api/replay", { taskId: current }); });
$("replay-batch").addEventListener("click", () => { if (confirm("Replay all dead letters?")) write("/api/replay-batch", { status: "DEAD_LETTER" }); });
const events = new EventSource("/events" + (token ? "?token=" + encodeURIComponent(token) : ""));
events.addEventListener("open", () => { $("live").textContent = "live"; });
events.addEventListener("error", () => { $("live").textContent = "reconnecting…"; });
events.addEventListener("task", soon);
refresh();
</script>
</body></html>
`;
}
