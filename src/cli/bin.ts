import { CommanderError } from "commander";
import { InvalidInputError, isRelayMeshError, errorToWire } from "../errors.js";
import { BOOLEAN_FLAGS, buildProgram } from "./cli.js";
import type { CommandResult, GlobalOptions } from "./context.js";
import { ExitCode, exitCodeOf } from "./errors.js";

/** `--flag=true` → `--flag`; `--flag=false` → nothing (commander has no boolean values). */
export function normalizeArgv(argv: string[]): string[] {
  return argv.flatMap((arg) => {
    const m = /^--([a-z][a-z0-9-]*)=(true|false)$/.exec(arg);
    if (!m || !BOOLEAN_FLAGS.has(m[1]!)) return [arg];
    return m[2] === "true" ? [`--${m[1]}`] : [];
  });
}

function print(result: CommandResult, globals: GlobalOptions): void {
  if (globals.json) process.stdout.write(`${JSON.stringify(result.data)}\n`);
  else if (result.human !== undefined) process.stdout.write(`${result.human}\n`);
  process.exitCode = result.exitCode ?? ExitCode.OK;
}

function fail(error: unknown, json: boolean): void {
  const exitCode = exitCodeOf(error);
  const message = error instanceof InvalidInputError
    ? `invalid input: ${error.problems.map((p) => `${p.where}: ${p.message}`).join("; ")}`
    : (error as Error)?.message ?? String(error);
  process.stderr.write(`relaymesh: ${message.replace(/\n\s*/g, " ")}\n`);
  if (json) {
    const wire = errorToWire(error);
    process.stdout.write(`${JSON.stringify({ error: { code: wire.code ?? null, message: wire.message, ...(isRelayMeshError(error) && error.details !== undefined ? { details: error.details } : {}) } })}\n`);
  }
  if (exitCode === ExitCode.FAILED && !isRelayMeshError(error) && process.env.RELAYMESH_DEBUG) process.stderr.write(`${(error as Error)?.stack}\n`);
  process.exitCode = exitCode;
}

const argv = normalizeArgv(process.argv.slice(2));
const json = argv.includes("--json");
const program = buildProgram(print);
program.configureOutput({
  writeErr: (text) => { if (!text.startsWith("error:")) process.stderr.write(text); },
});
try {
  await program.parseAsync(argv, { from: "user" });
} catch (error) {
  if (error instanceof CommanderError) {
    // Help or version asked for: 0; help shown because no command was given: a usage error.
    if (["commander.helpDisplayed", "commander.version", "commander.help"].includes(error.code)) process.exitCode = error.exitCode === 0 ? 0 : ExitCode.USAGE;
    else {
      process.stderr.write(`relaymesh: ${error.message.replace(/^error: /, "")}\n`);
      process.exitCode = ExitCode.USAGE;
    }
  } else {
    fail(error, json);
  }
}
