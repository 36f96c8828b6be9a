import { ErrorCode, isRelayMeshError } from "../errors.js";

/** Exit statuses of CONTRACT.md. */
export const ExitCode = { OK: 0, FAILED: 1, USAGE: 2, NOT_FOUND: 3 } as const;

/** Thrown by a command to end with a given status and one line on stderr. */
export class ExitError extends Error {
  readonly exitCode: number;
  constructor(exitCode: number, message: string) {
    super(message);
    this.name = "ExitError";
    this.exitCode = exitCode;
  }
}

/** The exit status an error maps to. */
export function exitCodeOf(error: unknown): number {
  if (error instanceof ExitError) return error.exitCode;
  if (isRelayMeshError(error)) {
    if (error.code === ErrorCode.INVALID_INPUT || error.code === ErrorCode.INVALID_OPTIONS) return ExitCode.USAGE;
    if (error.code === ErrorCode.NOT_FOUND) return ExitCode.NOT_FOUND;
  }
  return ExitCode.FAILED;
}
