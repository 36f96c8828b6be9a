import { Command, Option } from "commander";
import { readFileSync } from "node:fs";
import type { CommandResult, GlobalOptions } from "./context.js";

function packageVersion(): string {
  return (JSON.parse(readFileSync(new URL("../../../package.json", import.meta.url), "utf8")) as { version: string }).version;
}

/** Flags that are booleans: `--name=true|false` is rewritten to `--name` / nothing before parsing. */
export const BOOLEAN_FLAGS = new Set(["json", "once", "allow-get-writes", "in-place", "paused", "merge"]);

type Runner = (globals: GlobalOptions, ...args: never[]) => Promise<CommandResult>;

/**
 * Declares the commands; each one's module is imported only when it runs. `onResult` receives
 * what the command returned (printing and exiting are the entry point's job).
 */
export function buildProgram(onResult: (result: CommandResult, globals: GlobalOptions) => void): Command {
  const program = new Command("relaymesh")
    .description("RelayMesh: a durable, embeddable workflow engine")
    .version(packageVersion(), "--version", "print the version")
    .option("--root <dir>", "root folder (default: $RELAYMESH_ROOT, else ./relaymesh-data)")
    .option("--store <url>", "store URL: postgres://… (default: $RELAYMESH_STORE, else SQLite in the root)")
    .option("--json", "print exactly one JSON document on stdout")
    .showHelpAfterError(false)
    // The entry point turns parser errors into one line of its own; set before the commands, which inherit it.
    .configureOutput({ writeErr: () => {} })
    .exitOverride();

  const action = (load: () => Promise<{ default: Runner }>) =>
    async function (this: Command, ...args: unknown[]) {
      const globals = this.optsWithGlobals() as GlobalOptions & Record<string, unknown>;
      const { root, store, json } = globals;
      const positional = args.slice(0, this.registeredArguments.length);
      const runner = (await load()).default as (...a: unknown[]) => Promise<CommandResult>;
      const g: GlobalOptions = { ...(root !== undefined ? { root } : {}), ...(store !== undefined ? { store } : {}), json: json === true };
      onResult(await runner(g, ...positional, this.opts()), g);
    };

  program.command("init").description("create the root and store (idempotent)")
    .action(action(() => import("./commands/init.js")));

  program.command("submit").description("submit a one-step task")
    .requiredOption("--agent <agent>", "agent id")
    .option("--input <json>", "input, as JSON (a string is quoted: '\"text\"')")
    .addOption(new Option("--priority <priority>", "high | normal | low"))
    .option("--idempotency-key <key>", "same key, same task")
    .option("--traceparent <tp>", "W3C traceparent to continue")
    .option("--delay <duration>", "start no earlier than this long from now (30s, 5m, 1h…)")
    .option("--not-before <time>", "start no earlier than this time (ISO-8601 or epoch ms)")
    .action(action(() => import("./commands/submit.js")));

  program.command("submit-workflow").description("submit a workflow (DAG) file")
    .requiredOption("--file <file>", "workflow JSON file")
    .option("--idempotency-key <key>", "same key, same task (overrides the file's)")
    .option("--traceparent <tp>", "W3C traceparent to continue")
    .action(action(() => import("./commands/submit-workflow.js")));

  program.command("run").description("submit a workflow file and work until that task ends")
    .argument("<file>", "workflow JSON file")
    .option("--concurrency <n>", "steps running at once (default: 8)")
    .option("--timeout-ms <ms>", "give up waiting after this long (exit 1)")
    .action(action(() => import("./commands/run.js")));

  program.command("worker").description("execute steps until stopped (or once)")
    .option("--once", "one maintenance pass, run everything runnable now, then exit")
    .option("--node-id <id>", "node id used in leases (default: <hostname>-<pid>)")
    .option("--worker-id <id>", "worker id within the node")
    .option("--concurrency <n>", "steps running at once (default: 8)")
    .option("--shutdown-timeout-ms <ms>", "on SIGINT/SIGTERM, how long in-flight steps may finish (default: 30000)")
    .option("--settings-reload-ms <ms>", "re-read relaymesh-settings.json this often and apply changes live")
    .option("--inbox-poll-ms <ms>", "how often to look in inbox/ for dropped files (default: 1000)")
    .action(action(() => import("./commands/worker.js")));

  program.command("task").description("show one task")
    .argument("<id>", "task id")
    .action(action(() => import("./commands/task.js")));

  program.command("tasks").description("list tasks, newest first")
    .option("--status <status>", "PENDING | RUNNING | SUCCESS | DEAD_LETTER | CANCELLED")
    .option("--limit <n>", "at most this many (default: 50)")
    .option("--offset <n>", "skip this many (default: 0)")
    .action(action(() => import("./commands/tasks.js")));

  program.command("workflow").description("show a task's DAG")
    .argument("<id>", "task id")
    .action(action(() => import("./commands/workflow.js")));

  program.command("agents").description("list known agents")
    .action(action(() => import("./commands/agents.js")));

  program.command("lease-conflicts").description("writes refused because a lease moved on")
    .option("--since-hours <h>", "how far back (default: 24)")
    .option("--limit <n>", "at most this many (default: 100)")
    .action(action(() => import("./commands/lease-conflicts.js")));

  program.command("cancel").description("cancel a task")
    .argument("<id>", "task id")
    .option("--mode <mode>", "hard (abort running steps) | soft (let them finish) (default: hard)")
    .option("--reason <reason>", "recorded in the audit log")
    .action(action(() => import("./commands/cancel.js")));

  program.command("replay").description("re-run a dead-lettered task from its dead steps")
    .argument("<id>", "task id")
    .action(action(() => import("./commands/replay.js")));

  program.command("replay-batch").description("replay dead-lettered tasks")
    .option("--status <status>", "tasks of this status (default: DEAD_LETTER)")
    .option("--limit <n>", "at most this many (default: 100)")
    .action(action(() => import("./commands/replay-batch.js")));

  program.command("dead-export").description("write dead-lettered tasks to a JSON file")
    .requiredOption("--out <file>", "output file")
    .option("--limit <n>", "at most this many (default: 1000)")
    .action(action(() => import("./commands/dead-export.js")));

  program.command("task-export").description("write a task, its workflow and its audit records to a JSON file")
    .argument("<id>", "task id")
    .requiredOption("--out <file>", "output file")
    .action(action(() => import("./commands/task-export.js")));

  program.command("purge").description("delete old finished tasks and dead letters, forget old idempotency keys")
    .option("--done-retention-days <d>", "keep SUCCESS/CANCELLED tasks this long (default: 7)")
    .option("--dead-retention-days <d>", "keep DEAD_LETTER tasks this long (default: 30)")
    .option("--idempotency-ttl-days <d>", "keep idempotency keys this long (default: 7)")
    .action(action(() => import("./commands/purge.js")));

  program.command("stats").description("counts per status and SLA figures")
    .action(action(() => import("./commands/stats.js")));

  program.command("health").description("store and node health (exit 1 when unhealthy)")
    .option("--node-id <id>", "check this node's heartbeat is fresh")
    .action(action(() => import("./commands/health.js")));

  program.command("metrics").description("print Prometheus metrics")
    .action(action(() => import("./commands/metrics.js")));

  program.command("serve-metrics").description("serve Prometheus metrics over HTTP")
    .option("--port <port>", "port (default: 9464)")
    .option("--path <path>", "path (default: /metrics)")
    .option("--bind <address>", "address to bind (default: 127.0.0.1)")
    .action(action(() => import("./commands/serve-metrics.js")));

  program.command("serve-web").description("serve the web console (tasks, DAGs, dead letters, live updates)")
    .option("--port <port>", "port (default: 8080)")
    .option("--bind <address>", "address to bind (default: 127.0.0.1; loopback only without a token)")
    .option("--ro-token <token>", "read-only token")
    .option("--rw-token <token>", "read-write token")
    .option("--ro-token-next <token>", "second read-only token, for rotation")
    .option("--rw-token-next <token>", "second read-write token, for rotation")
    .option("--allow-get-writes", "accept GET on write routes (counted and audited)")
    .option("--write-rate-limit-per-min <n>", "writes per source address per minute (default: 60)")
    .option("--tls-key <file>", "PEM private key: serve HTTPS (with --tls-cert)")
    .option("--tls-cert <file>", "PEM certificate: serve HTTPS (with --tls-key)")
    .action(action(() => import("./commands/serve-web.js")));

  program.command("audit-tail").description("the last audit records")
    .option("--lines <n>", "how many (default: 20)")
    .action(action(() => import("./commands/audit-tail.js")));

  program.command("audit-query").description("audit records matching filters, newest first")
    .option("--task-id <id>", "of this task")
    .option("--action <action>", "of this action (e.g. task.submit, task.cancel)")
    .option("--from <time>", "at or after (ms since the epoch or ISO-8601)")
    .option("--to <time>", "at or before (ms since the epoch or ISO-8601)")
    .option("--limit <n>", "at most this many (default: 100)")
    .action(action(() => import("./commands/audit-query.js")));

  program.command("reload-settings").description("validate relaymesh-settings.json and record which fields changed")
    .action(action(() => import("./commands/reload-settings.js")));

  program.command("settings-history").description("recorded settings changes (field names only)")
    .option("--limit <n>", "at most this many (default: 20)")
    .action(action(() => import("./commands/settings-history.js")));

  program.command("ingest").description("submit the workflow files dropped in inbox/{high,normal,low}/")
    .action(action(() => import("./commands/ingest.js")));

  program.command("kv").description("the checkpoint store: kv get|put|list|delete [--namespace NS] KEY [VALUE]")
    .argument("<action>", "get | put | list | delete")
    .argument("[key]", "key")
    .argument("[value]", "value (put): JSON, or a plain string (text starting with { [ or \" must be valid JSON)")
    .option("--namespace <ns>", "namespace; a task's checkpoints live in the one named by its task id (default: default)")
    .option("--prefix <p>", "list: keys starting with this")
    .option("--limit <n>", "list: at most this many (default: 1000)")
    .action(action(() => import("./commands/kv.js")));

  const bench = program.command("bench").alias("benchmark-run")
    .description("sustained benchmark (scratch store by default): throughput, latency percentiles, JSON and HTML reports")
    .option("--tasks <n>", "tasks to run (default: 1000, or unlimited with --duration)")
    .option("--duration <d>", "submit for this long, e.g. 90s, 10m, 1h30m; then drain")
    .option("--shape <shape>", "single | chain | diamond | fanout (default: single)")
    .option("--agent <agent>", "agent of every step of the shape (default: echo)")
    .option("--workflow <file>", "run this workflow file (its own agents and inputs) instead of a shape")
    .option("--priority <priority>", "high | normal | low (default: the workflow's, else normal)")
    .option("--input-size <bytes>", "input size of each step of the shape (default: 64)")
    .option("--rate <r>", "open loop: offer this many tasks per second")
    .option("--in-flight <n>", "closed loop: keep this many submissions in flight (default: --concurrency)")
    .option("--concurrency <n>", "steps running at once (default: 8)")
    .option("--warmup <n>", "tasks run before measuring, not counted (default: 0)")
    .option("--durability <d>", "full | normal (default: the settings file's)")
    .option("--max-seconds <s>", "cap on the whole run; past it, stop and report (default: 300, or the duration + 300)")
    .option("--report-out <file>", "JSON report (default: <root>/reports/bench-<time>.json); the HTML report goes beside it")
    .option("--in-place", "run in the real store (not a scratch one); tasks are named bench:<run id>")
    .action(action(() => import("./commands/bench.js")));

  bench.command("compare").description("two bench reports side by side, with ratios and whether each difference is beyond the runs' spread")
    .argument("<a>", "first report (JSON)")
    .argument("<b>", "second report (JSON)")
    .action(action(() => import("./commands/bench-compare.js")));

  bench.command("purge").description("delete the finished tasks of bench --in-place runs (named bench:<run id>) from the store")
    .argument("[run-id]", "only this run's (default: every run's)")
    .action(action(() => import("./commands/bench-purge.js")));

  program.command("schedule").description("cron schedules: schedule add|list|show|pause|resume|remove|trigger [NAME]")
    .argument("<action>", "add | list | show | pause | resume | remove | trigger")
    .argument("[name]", "schedule name (show, pause, resume, remove, trigger)")
    .option("--name <name>", "add: the schedule's name (adding an existing name replaces it)")
    .option("--cron <expr>", "add: cron expression, 5 fields or 6 with seconds first")
    .option("--file <file>", "add: the workflow JSON file each slot submits")
    .option("--timezone <tz>", "add: IANA time zone the expression is read in (default: UTC)")
    .option("--overlap <policy>", "add: skip | allow | cancel-previous, when the previous slot's task is still open (default: skip)")
    .option("--catch-up <policy>", "add: none | latest | all, for slots missed while no node ran (default: none)")
    .option("--catch-up-window <duration>", "add: missed slots older than this are not caught up (default: 7d)")
    .option("--jitter <duration>", "add: each slot fires up to this much later (default: 0)")
    .option("--paused", "add: add it paused")
    .action(action(() => import("./commands/schedule.js")));

  program.command("members").alias("mesh-summary").description("nodes and their standing (ALIVE, SUSPECT, DEAD by heartbeat age)")
    .action(action(() => import("./commands/members.js")));

  program.command("maintenance").description("one maintenance tick: standings, reclaims, prune")
    .option("--node-id <id>", "act as this node")
    .option("--limit <n>", "steps taken from DEAD nodes at most (default: meshRecoverPerTick)")
    .action(action(() => import("./commands/maintenance.js")));

  program.command("mesh-recover").description("reclaim the RUNNING steps of DEAD nodes")
    .option("--limit <n>", "at most this many (default: 1000)")
    .action(action(() => import("./commands/mesh-recover.js")));

  program.command("mesh-prune").description("delete old DEAD node rows")
    .option("--older-than-ms <ms>", "last heartbeat older than this (default: meshPruneOlderThanMs)")
    .option("--limit <n>", "at most this many (default: meshPruneLimit)")
    .action(action(() => import("./commands/mesh-prune.js")));

  program.command("ownership-events").description("reclaims and refused writes, newest first")
    .option("--since-hours <h>", "how far back (default: 24)")
    .option("--limit <n>", "at most this many (default: 100)")
    .action(action(() => import("./commands/ownership-events.js")));

  program.command("lease-report").description("lease conflicts and reclaims aggregated; written to --out or reports/")
    .option("--hours <h>", "how far back (default: 24)")
    .option("--out <file>", "where to write the report (default: <root>/reports/lease-report-<time>.json)")
    .action(action(() => import("./commands/lease-report.js")));

  program.command("cluster-state").description("the cluster-wide fencing epoch")
    .action(action(() => import("./commands/cluster-state.js")));

  program.command("cluster-epoch-bump").description("fence everything in flight: running steps get new lease epochs and run again")
    .requiredOption("--reason <reason>", "recorded in the audit log")
    .action(action(() => import("./commands/cluster-epoch-bump.js")));

  program.command("snapshot-export").description("consistent copy of the root (store, settings, agents, audit log) in a new folder")
    .requiredOption("--out <dir>", "a new or empty folder")
    .action(action(() => import("./commands/snapshot-export.js")));

  program.command("snapshot-import").description("restore a snapshot into a new or empty root")
    .requiredOption("--in <dir>", "a folder written by snapshot-export")
    .action(action(() => import("./commands/snapshot-import.js")));

  program.command("migrate").description("copy this root's store into another store (e.g. SQLite → PostgreSQL); reruns copy nothing twice")
    .requiredOption("--to <url>", "target store: postgres://… or sqlite:<path>")
    .option("--merge", "add to a target that already holds another store's tasks")
    .action(action(() => import("./commands/migrate.js")));

  return program;
}
