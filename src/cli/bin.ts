import { CommanderError } from "commander";
import { isRelayMeshError } from "../errors.js";
import { BOOLEAN_FLAGS, buildProgram } from "./cli.js";
import type { CommandResult, GlobalOptions } from "./context.js";
import { ExitCode, ExitError, failureReport } from "./errors.js";

/** `--flag=true` → `--flag`; `--flag=false` → nothing (commander has no boolean values). */
export function normalizeArgv(argv: string[]): string[] {
  return argv.flatMap((arg) => {
    const m = /^--([a-z][a-z0-9-]*)=(true|false)$/.exec(arg);
    if (!m || !BOOLEAN_FLAGS.has(m[1]!)) return [arg];
    return m[2] === "true" ? [`--${m[1]}`] : [];
  });
}

// A reader of the output that went away (`relaymesh tasks | head -1`) ends the command quietly;
// one of the logs only loses the logs (a worker goes on working).
process.stdout.on("error", (error: NodeJS.ErrnoException) => {
  if (error.code === "EPIPE") process.exit(process.exitCode ?? ExitCode.OK);
  throw error;
});
process.stderr.on("error", (error: NodeJS.ErrnoException) => {
  if (error.code !== "EPIPE") throw error;
});

function print(result: CommandResult, globals: GlobalOptions): void {
  if (globals.json) process.stdout.write(`${JSON.stringify(result.data)}\n`);
  else if (result.human !== undefined) process.stdout.write(`${result.human}\n`);
  process.exitCode = result.exitCode ?? ExitCode.OK;
}

/** Every failure: one line on stderr, with --json one `{"error":{code,message,details}}` document on stdout. */
function fail(error: unknown, json: boolean): void {
  const report = failureReport(error);
  process.stderr.write(`${report.line}\n`);
  if (json) process.stdout.write(`${JSON.stringify(report.document)}\n`);
  if (!isRelayMeshError(error) && process.env.RELAYMESH_DEBUG) process.stderr.write(`${(error as Error)?.stack}\n`);
  process.exitCode = report.exitCode;
}

const argv = normalizeArgv(process.argv.slice(2));
const json = argv.includes("--json");
const program = buildProgram(print);
try {
  await program.parseAsync(argv, { from: "user" });
} catch (error) {
  if (!(error instanceof CommanderError)) fail(error, json);
  else if (error.code === "commander.helpDisplayed" || error.code === "commander.version") process.exitCode = ExitCode.OK;
  else if (error.code === "commander.help") fail(new ExitError(ExitCode.USAGE, "no command given (see relaymesh --help)"), json);
  else {
    fail(new ExitError(ExitCode.USAGE, error.message.replace(/^error: /, ""), { details: { parser: error.code } }), json);
  }
}
