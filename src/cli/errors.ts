import { ErrorCode, InvalidInputError, RelayMeshError, isRelayMeshError } from "../errors.js";

/** Exit statuses of CONTRACT.md. */
export const ExitCode = { OK: 0, FAILED: 1, USAGE: 2, NOT_FOUND: 3 } as const;

const CODE_OF_EXIT: Readonly<Record<number, ErrorCode>> = { 1: ErrorCode.ENVIRONMENT, 2: ErrorCode.USAGE, 3: ErrorCode.NOT_FOUND };

/** Thrown by a command to end with a given status and one line on stderr; its `code` defaults from the status. */
export class ExitError extends RelayMeshError {
  readonly exitCode: number;
  constructor(exitCode: number, message: string, options: { code?: ErrorCode; details?: unknown } = {}) {
    super(options.code ?? CODE_OF_EXIT[exitCode] ?? ErrorCode.INTERNAL, message, options.details !== undefined ? { details: options.details } : {});
    this.exitCode = exitCode;
  }
}

/** The exit status an error maps to. */
export function exitCodeOf(error: unknown): number {
  if (error instanceof ExitError) return error.exitCode;
  if (isRelayMeshError(error)) {
    if (error.code === ErrorCode.INVALID_INPUT || error.code === ErrorCode.INVALID_OPTIONS || error.code === ErrorCode.USAGE) return ExitCode.USAGE;
    if (error.code === ErrorCode.NOT_FOUND) return ExitCode.NOT_FOUND;
  }
  return ExitCode.FAILED;
}

/** How a failed command reports: its exit status, its one stderr line, and its `--json` document. */
export function failureReport(error: unknown): { exitCode: number; line: string; document: { error: { code: ErrorCode; message: string; details: unknown } } } {
  const known = isRelayMeshError(error);
  const message = error instanceof InvalidInputError
    ? `invalid input: ${error.problems.map((p) => `${p.where}: ${p.message}`).join("; ")}`
    : error instanceof Error ? error.message : String(error);
  const text = message.replace(/\s*\n\s*/g, " ");
  return {
    exitCode: exitCodeOf(error),
    line: `relaymesh: ${text}`,
    document: { error: { code: known ? error.code : ErrorCode.INTERNAL, message: text, details: known && error.details !== undefined ? error.details : null } },
  };
}
