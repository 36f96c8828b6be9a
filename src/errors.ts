/**
 * Typed errors. Every error RelayMesh raises is a `RelayMeshError` with a stable `code`
 * (`RELAYMESH_ERR_*`, listed in the README). Brand-check with `isRelayMeshError()` rather than
 * `instanceof`: errors that cross a worker thread lose their prototype and are rebuilt from
 * `code` by `errorFromWire()`.
 */

const BRAND = Symbol.for("relaymesh.error");

export const ErrorCode = {
  /** Input at an edge (workflow file, CLI argument, option) failed validation. */
  INVALID_INPUT: "RELAYMESH_ERR_INVALID_INPUT",
  /** Options or settings failed validation. */
  INVALID_OPTIONS: "RELAYMESH_ERR_INVALID_OPTIONS",
  /** A task, step or other resource does not exist. */
  NOT_FOUND: "RELAYMESH_ERR_NOT_FOUND",
  /** The store failed, or its configuration did not take. */
  STORE: "RELAYMESH_ERR_STORE",
  /** A write was refused because the step's lease moved on (fencing). */
  LEASE_LOST: "RELAYMESH_ERR_LEASE_LOST",
  /** A step ran longer than its `timeoutMs`. */
  STEP_TIMEOUT: "RELAYMESH_ERR_STEP_TIMEOUT",
  /** A step was aborted (cancel, shutdown, lost lease). */
  ABORTED: "RELAYMESH_ERR_ABORTED",
  /** An agent failed; retried per policy. */
  AGENT_FAILED: "RELAYMESH_ERR_AGENT_FAILED",
  /** An agent asked not to be retried. */
  NON_RETRYABLE: "RELAYMESH_ERR_NON_RETRYABLE",
  /** An agent asked to be retried after a delay. */
  RETRY_LATER: "RELAYMESH_ERR_RETRY_LATER",
  /** The named agent is not registered. */
  UNKNOWN_AGENT: "RELAYMESH_ERR_UNKNOWN_AGENT",
  /** A method was called in a state that does not allow it. */
  INVALID_STATE: "RELAYMESH_ERR_INVALID_STATE",
  /** close() did not finish within its time limit. */
  SHUTDOWN_TIMEOUT: "RELAYMESH_ERR_SHUTDOWN_TIMEOUT",
  /** waitFor() gave up before the task finished. */
  WAIT_TIMEOUT: "RELAYMESH_ERR_WAIT_TIMEOUT",
  /** The environment refused: a file or folder could not be created or written (permissions, a read-only or full file system), a port could not be bound. */
  ENVIRONMENT: "RELAYMESH_ERR_ENVIRONMENT",
  /**
   * The worker thread running an attempt was ended because another attempt on it stopped
   * responding (past its timeout or abort); the attempt's lease is given back and it runs again,
   * not counted as an attempt.
   */
  WORKER_LOST: "RELAYMESH_ERR_WORKER_LOST",
  /** The command line was invalid: an unknown command or option, a missing or invalid value. */
  USAGE: "RELAYMESH_ERR_USAGE",
  /** An unexpected failure (a bug): the message says what; RELAYMESH_DEBUG=1 prints its stack. */
  INTERNAL: "RELAYMESH_ERR_INTERNAL",
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

export interface RelayMeshErrorOptions {
  cause?: unknown;
  /** Machine-readable details (the list of validation problems, ids…). */
  details?: unknown;
}

export class RelayMeshError extends Error {
  readonly code: ErrorCode;
  readonly details?: unknown;
  readonly [BRAND] = true;

  constructor(code: ErrorCode, message: string, options: RelayMeshErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    if (options.details !== undefined) this.details = options.details;
  }
}

/** One problem found while validating input: where it is and what is wrong. */
export interface Problem {
  /** Where: file, step id, field path — whatever locates it. */
  where: string;
  message: string;
}

export class InvalidInputError extends RelayMeshError {
  readonly problems: Problem[];
  constructor(problems: Problem[], options: RelayMeshErrorOptions = {}) {
    super(ErrorCode.INVALID_INPUT, formatProblems(problems), { ...options, details: problems });
    this.problems = problems;
  }
}

export class InvalidOptionsError extends RelayMeshError {
  constructor(message: string, options: RelayMeshErrorOptions = {}) {
    super(ErrorCode.INVALID_OPTIONS, message, options);
  }
}

export class NotFoundError extends RelayMeshError {
  constructor(message: string, options: RelayMeshErrorOptions = {}) {
    super(ErrorCode.NOT_FOUND, message, options);
  }
}

export class StoreError extends RelayMeshError {
  constructor(message: string, options: RelayMeshErrorOptions = {}) {
    super(ErrorCode.STORE, message, options);
  }
}

export class LeaseLostError extends RelayMeshError {
  constructor(message: string, options: RelayMeshErrorOptions = {}) {
    super(ErrorCode.LEASE_LOST, message, options);
  }
}

export class StepTimeoutError extends RelayMeshError {
  constructor(message: string, options: RelayMeshErrorOptions = {}) {
    super(ErrorCode.STEP_TIMEOUT, message, options);
  }
}

export class InvalidStateError extends RelayMeshError {
  constructor(message: string, options: RelayMeshErrorOptions = {}) {
    super(ErrorCode.INVALID_STATE, message, options);
  }
}

export class ShutdownTimeoutError extends RelayMeshError {
  constructor(message: string, options: RelayMeshErrorOptions = {}) {
    super(ErrorCode.SHUTDOWN_TIMEOUT, message, options);
  }
}

/** Thrown by an agent: the step fails at once, without further attempts. */
export class NonRetryableError extends RelayMeshError {
  constructor(message: string, options: RelayMeshErrorOptions = {}) {
    super(ErrorCode.NON_RETRYABLE, message, options);
  }
}

/** Thrown by an agent: retry this step after `delayMs` (counts as an attempt). */
export class RetryLaterError extends RelayMeshError {
  readonly delayMs: number;
  constructor(message: string, options: RelayMeshErrorOptions & { delayMs: number }) {
    super(ErrorCode.RETRY_LATER, message, { ...options, details: { delayMs: options.delayMs } });
    this.delayMs = options.delayMs;
  }
}

export function isRelayMeshError(value: unknown): value is RelayMeshError {
  return typeof value === "object" && value !== null && (value as Record<symbol, unknown>)[BRAND] === true;
}

/** An error as it travels between threads and into the store. */
export interface WireError {
  name: string;
  code?: string;
  message: string;
  stack?: string;
  details?: unknown;
}

/**
 * An error as plain data. Total: whatever was thrown (a non-Error, a BigInt, a cycle, getters
 * that throw) gives a WireError; `details` are kept only when they survive JSON.
 */
export function errorToWire(error: unknown): WireError {
  try {
    if (!(error instanceof Error)) return { name: "Error", message: describeThrown(error) };
    const wire: WireError = { name: String(error.name), message: String(error.message) };
    const code = (error as { code?: unknown }).code;
    if (typeof code === "string") wire.code = code;
    if (typeof error.stack === "string") wire.stack = error.stack;
    const details = jsonSafe((error as { details?: unknown }).details);
    if (details !== undefined) wire.details = details;
    return wire;
  } catch {
    return { name: "Error", message: "an error that cannot be described was thrown" };
  }
}

/** A thrown non-Error as text: strings as they are, else JSON, else String(). */
function describeThrown(value: unknown): string {
  if (typeof value === "string") return value;
  try {
    const json = JSON.stringify(value);
    if (json !== undefined) return json;
  } catch { /* BigInt, cycle: String() below */ }
  try {
    return String(value);
  } catch {
    return Object.prototype.toString.call(value);
  }
}

function jsonSafe(value: unknown): unknown {
  if (value === undefined) return undefined;
  try {
    const json = JSON.stringify(value);
    return json === undefined ? undefined : JSON.parse(json);
  } catch {
    return undefined;
  }
}

/** Rebuilds an error that crossed a thread or process: a RelayMeshError with the same code, name and message. */
export function errorFromWire(wire: WireError, fallbackCode: ErrorCode = ErrorCode.AGENT_FAILED): RelayMeshError {
  const code = (Object.values(ErrorCode) as string[]).includes(wire.code ?? "") ? (wire.code as ErrorCode) : fallbackCode;
  const error = new RelayMeshError(code, wire.message, wire.details !== undefined ? { details: wire.details } : {});
  error.name = wire.name;
  if (wire.stack) error.stack = wire.stack;
  return error;
}

export function formatProblems(problems: Problem[]): string {
  if (problems.length === 1) return `${problems[0]!.where}: ${problems[0]!.message}`;
  return `${problems.length} problems:\n` + problems.map((p) => `  - ${p.where}: ${p.message}`).join("\n");
}
