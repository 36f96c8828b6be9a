import { userInfo } from "node:os";
import { RelayMesh } from "../engine.js";
import type { EngineOptions } from "../options.js";
import { ExitCode, ExitError } from "./errors.js";
import { MAX_TIMER_MS } from "../model/duration.js";
import { parseDurationMs, parseTimeMs } from "../model/flow.js";

/** Options every command accepts (CONTRACT.md "Invocation"). */
export interface GlobalOptions {
  root?: string;
  store?: string;
  json?: boolean;
}

/** What a command hands back: the JSON document, its human rendering, and the exit status. */
export interface CommandResult {
  data: unknown;
  human?: string;
  exitCode?: number;
}

/** Opens the engine on the root and store named by the global options. */
export function openMesh(globals: GlobalOptions, options: Omit<EngineOptions, "root" | "store"> = {}): Promise<RelayMesh> {
  return RelayMesh.open({
    actor: cliActor(),
    // A one-shot command (work: false) makes its few calls on the calling thread, with no store thread
    // to start; the long-running ones (worker, serve-web, serve-metrics) ask for the thread.
    storeThread: options.work ?? true,
    ...options,
    ...(globals.root !== undefined ? { root: globals.root } : {}),
    ...(globals.store !== undefined ? { store: globals.store } : {}),
  });
}

/** The audit actor of CLI actions: "cli:<os user>". */
function cliActor(): string {
  try {
    return `cli:${userInfo().username}`;
  } catch {
    return "cli";
  }
}

/** Runs `fn` with an engine that is closed afterwards, whatever happens. */
export async function withMesh<T>(globals: GlobalOptions, options: Omit<EngineOptions, "root" | "store">, fn: (mesh: RelayMesh) => Promise<T>): Promise<T> {
  const mesh = await openMesh(globals, options);
  try {
    return await fn(mesh);
  } finally {
    await mesh.close({ timeoutMs: 0 });
  }
}

/** Parses an integer option, or ends with status 2 naming the option. */
export function intOption(name: string, value: string | undefined, limits: { min?: number; max?: number } = {}): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  const min = limits.min ?? 0;
  const max = limits.max ?? Number.MAX_SAFE_INTEGER;
  if (!/^-?\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
    throw new ExitError(ExitCode.USAGE, `--${name}: expected an integer from ${min} to ${max}, got "${value}"`);
  }
  return n;
}

/** Parses a duration option: milliseconds, or `500ms`, `30s`, `5m`, `1h30m`, `2d`, up to 2^31-1 ms (what a timer honours); else ends with status 2. */
export function durationOption(name: string, value: string | undefined, min = 0): number | undefined {
  if (value === undefined || /^\s*-?\d+\s*$/.test(value)) return intOption(name, value, { min, max: MAX_TIMER_MS });
  const ms = parseDurationMs(value);
  if (ms === null || ms < min || ms > MAX_TIMER_MS) {
    throw new ExitError(ExitCode.USAGE, `--${name}: expected milliseconds or a duration such as 500ms, 30s, 5m, 1h or 2d, from ${min} to ${MAX_TIMER_MS} ms, got "${value}"`);
  }
  return ms;
}

/** Parses a number option (fractions allowed) from `min` to `max`, or ends with status 2 naming the option. */
export function numberOption(name: string, value: string | undefined, min = 0, max = Number.MAX_SAFE_INTEGER): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === "" || !Number.isFinite(n) || n < min || n > max) {
    throw new ExitError(ExitCode.USAGE, `--${name}: expected a number from ${min} to ${max}, got "${value}"`);
  }
  return n;
}

/** Checks an option against a list of allowed values, or ends with status 2. */
export function choiceOption<T extends string>(name: string, value: string | undefined, choices: readonly T[]): T | undefined {
  if (value === undefined) return undefined;
  if (!(choices as readonly string[]).includes(value)) {
    throw new ExitError(ExitCode.USAGE, `--${name}: expected one of ${choices.join(", ")}, got "${value}"`);
  }
  return value as T;
}

/** Parses a time option (ISO-8601 or epoch ms), or ends with status 2 naming the option. */
export function timeOption(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const ms = parseTimeMs(value);
  if (ms === null) throw new ExitError(ExitCode.USAGE, `--${name}: expected an ISO-8601 time (2030-01-01T09:00:00Z) or epoch milliseconds, got "${value}"`);
  return ms;
}

/** A JSON value given as option `name`, or ends with status 2 naming the option. */
export function jsonOption(name: string, value: string | undefined): unknown {
  if (value === undefined) return undefined;
  try {
    return JSON.parse(value);
  } catch (error) {
    throw new ExitError(ExitCode.USAGE, `--${name}: invalid JSON (${(error as Error).message}); quote a string as JSON, e.g. '"text"'`);
  }
}

/**
 * A value given on the command line as `name`: JSON when it parses as JSON, else the plain
 * string — unless it starts like a JSON object, array or string, which must then be valid (status 2).
 */
export function jsonOrString(name: string, value: string): unknown {
  try {
    return JSON.parse(value);
  } catch (error) {
    if (/^\s*[[{"]/.test(value)) throw new ExitError(ExitCode.USAGE, `${name}: invalid JSON (${(error as Error).message})`);
    return value;
  }
}
