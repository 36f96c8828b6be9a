import { Command, Option } from "commander";
import type { CommandResult, GlobalOptions } from "./context.js";

/** Flags that are booleans: `--name=true|false` is rewritten to `--name` / nothing before parsing. */
export const BOOLEAN_FLAGS = new Set(["json", "once"]);

type Runner = (globals: GlobalOptions, ...args: never[]) => Promise<CommandResult>;

/**
 * Declares the commands; each one's module is imported only when it runs. `onResult` receives
 * what the command returned (printing and exiting are the entry point's job).
 */
export function buildProgram(onResult: (result: CommandResult, globals: GlobalOptions) => void): Command {
  const program = new Command("relaymesh")
    .description("RelayMesh: a durable, embeddable workflow engine")
    .option("--root <dir>", "root folder (default: $RELAYMESH_ROOT, else ./relaymesh-data)")
    .option("--store <url>", "store URL: postgres://… (default: $RELAYMESH_STORE, else SQLite in the root)")
    .option("--json", "print exactly one JSON document on stdout")
    .showHelpAfterError(false)
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
    .option("--input <json>", "input: JSON, or a plain string")
    .addOption(new Option("--priority <priority>", "high | normal | low"))
    .option("--idempotency-key <key>", "same key, same task")
    .option("--traceparent <tp>", "W3C traceparent to continue")
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

  return program;
}
