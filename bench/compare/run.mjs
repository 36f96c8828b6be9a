// `npm run bench:compare -- [--quick] [--only W1,W2,W3,W4] [--systems a,b] [--json out.json]`
//
// RelayMesh next to BullMQ (Redis) and graphile-worker (PostgreSQL) on the same four workloads,
// one fresh process per system and workload, workloads interleaved across systems, ratios printed.
// The peers are installed into bench/compare/node_modules on the first run (never by the project's
// own `npm install`). Plain .mjs: the project's tsc build does not see the peers' packages.
import { spawn, spawnSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { availableParallelism, cpus, loadavg } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const here = dirname(fileURLToPath(import.meta.url));
const ALL_SYSTEMS = ["relaymesh-sqlite", "relaymesh-pg", "bullmq", "graphile-worker"];
const ALL_WORKLOADS = ["W1", "W2", "W3", "W4"];

const { values: args } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    only: { type: "string" },
    systems: { type: "string" },
    json: { type: "string" },
    help: { type: "boolean", default: false },
  },
  strict: true,
});
if (args.help) {
  console.log(`usage: npm run bench:compare -- [--quick] [--only ${ALL_WORKLOADS.join(",")}] [--systems ${ALL_SYSTEMS.join(",")}] [--json out.json]`);
  process.exit(0);
}
const pick = (flag, value, all) => {
  const wanted = value ? value.split(",").map((s) => s.trim()).filter(Boolean) : all;
  const unknown = wanted.filter((w) => !all.includes(w));
  if (unknown.length) { console.error(`bench:compare: --${flag}: unknown ${unknown.join(", ")}; known: ${all.join(", ")}`); process.exit(2); }
  return wanted;
};
const workloads = pick("only", args.only?.toUpperCase(), ALL_WORKLOADS);
const systems = pick("systems", args.systems, ALL_SYSTEMS);

ensurePeersInstalled();

const size = args.quick ? "quick" : "full";
const load = loadavg();
console.log(`RelayMesh side by side${args.quick ? " (--quick: small counts, a smoke run, not a measurement)" : ""}`);
console.log(`machine: ${availableParallelism()} cores, ${cpus()[0]?.model ?? "unknown"}, node ${process.version}; load average ${load.map((l) => l.toFixed(2)).join(" ")}`);
console.log(`setup: concurrency 8, 64-byte no-op (echo) steps, one fresh process per system and workload; RelayMesh durability full;` +
  ` BullMQ ${peerVersion("bullmq")} (Redis, chains by FlowProducer, diamonds by completion-triggered enqueue);` +
  ` graphile-worker ${peerVersion("graphile-worker")} (localQueue 500, completeJobBatchDelay 0, pool 10)\n`);

const results = {};
for (const w of workloads) {
  results[w] = {};
  for (const s of systems) {
    const started = performance.now();
    results[w][s] = await runChild(s, w);
    const r = results[w][s];
    console.error(`  ${w} ${s}: ${r.error ? `ERROR ${r.error}` : JSON.stringify(round(r))} (${((performance.now() - started) / 1000).toFixed(1)} s)`);
  }
}
const report = table(results);
console.log(`\n${report.text}`);
if (args.json) {
  writeFileSync(args.json, `${JSON.stringify({ startedAt: new Date().toISOString(), size, loadavgAtStart: load, loadavgAtEnd: loadavg(), results, targets: report.targets }, null, 2)}\n`);
  console.log(`report written to ${args.json}`);
}

function ensurePeersInstalled() {
  const declared = JSON.parse(readFileSync(join(here, "package.json"), "utf8")).dependencies;
  const missing = Object.entries(declared).filter(([name, version]) => peerVersion(name) !== version);
  if (missing.length === 0) return;
  console.error(`bench:compare: installing ${missing.map(([n, v]) => `${n}@${v}`).join(", ")} into ${join(here, "node_modules")} (first run)`);
  const r = spawnSync("npm", ["ci", "--no-audit", "--no-fund"], { cwd: here, stdio: ["ignore", process.stderr, process.stderr] });
  if (r.status !== 0) { console.error("bench:compare: npm ci failed"); process.exit(1); }
}

function peerVersion(name) {
  const p = join(here, "node_modules", name, "package.json");
  return existsSync(p) ? JSON.parse(readFileSync(p, "utf8")).version : null;
}

function runChild(system, workload) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(here, "child.mjs"), system, workload, size], { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    child.stdout.setEncoding("utf8").on("data", (c) => { out += c; });
    child.on("close", (code) => {
      try { resolve(JSON.parse(out.trim().split("\n").pop())); } catch { resolve({ error: `child exited with code ${code} and no result` }); }
    });
  });
}

function round(r) {
  return Object.fromEntries(Object.entries(r).map(([k, v]) => [k, typeof v === "number" ? Math.round(v * 10) / 10 : v]));
}

/** The figures of each workload, one column per system, then RelayMesh's ratio to each peer (> 1: RelayMesh better). */
function table(res) {
  const FIGURES = {
    W1: [["drainPerSec", "drain steps/s", "up"], ["enqueuePerSec", "enqueue/s", "up"]],
    W2: [["perSec", "chains/s", "up"], ["p50", "p50 ms", "down"], ["p99", "p99 ms", "down"]],
    W3: [["perSec", "diamonds/s", "up"], ["p50", "p50 ms", "down"], ["p99", "p99 ms", "down"]],
    W4: [["p50", "p50 ms", "down"], ["p99", "p99 ms", "down"], ["achievedPerSec", "achieved/s", "up"]],
  };
  const ours = systems.filter((s) => s.startsWith("relaymesh"));
  const peers = systems.filter((s) => !s.startsWith("relaymesh"));
  const header = ["workload", "figure", ...systems, ...ours.flatMap((o) => peers.map((p) => `${o.replace("relaymesh-", "RM ")} vs ${p}`))];
  const rows = [];
  const fmt = (v) => (typeof v === "number" ? v.toLocaleString("en-US", { maximumFractionDigits: v < 100 ? 1 : 0 }) : "—");
  for (const w of Object.keys(res)) {
    for (const [key, label, better] of FIGURES[w]) {
      const cells = systems.map((s) => (res[w][s]?.error ? "error" : fmt(res[w][s]?.[key])));
      const ratios = ours.flatMap((o) => peers.map((p) => {
        const a = res[w][o]?.[key];
        const b = res[w][p]?.[key];
        if (typeof a !== "number" || typeof b !== "number") return "—";
        return `${(better === "up" ? a / b : b / a).toFixed(2)}×`;
      }));
      rows.push([w, label, ...cells, ...ratios]);
    }
  }
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c].length)));
  const line = (cells) => cells.map((cell, c) => (c < 2 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join("  ");
  const lines = [line(header), ...rows.map(line), "ratios: > 1 means RelayMesh is better (throughput ours ÷ theirs; latency theirs ÷ ours)", ""];

  const get = (w, s, k) => res[w]?.[s]?.[k];
  const targets = [];
  for (const o of ours) {
    const check = (text, a, b, ok) => {
      if (typeof a !== "number" || typeof b !== "number") return;
      targets.push({ system: o, target: text, relaymesh: a, peer: b, met: ok(a, b) });
    };
    check("W1 drain ≥ graphile-worker's", get("W1", o, "drainPerSec"), get("W1", "graphile-worker", "drainPerSec"), (a, b) => a >= b);
    check("W1 drain ≥ 2× BullMQ's", get("W1", o, "drainPerSec"), get("W1", "bullmq", "drainPerSec"), (a, b) => a >= 2 * b);
    check("W2 ≥ 3× BullMQ's", get("W2", o, "perSec"), get("W2", "bullmq", "perSec"), (a, b) => a >= 3 * b);
    check("W3 ≥ 3× BullMQ's", get("W3", o, "perSec"), get("W3", "bullmq", "perSec"), (a, b) => a >= 3 * b);
    check("W4 p99 ≤ BullMQ's", get("W4", o, "p99"), get("W4", "bullmq", "p99"), (a, b) => a <= b);
  }
  if (targets.length) {
    lines.push("targets (issue 10):");
    for (const t of targets) lines.push(`  ${t.system}: ${t.target}: ${fmt(t.relaymesh)} vs ${fmt(t.peer)} — ${t.met ? "met" : "NOT MET"}`);
  }
  return { text: lines.join("\n"), targets };
}
