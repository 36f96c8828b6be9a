import { spawn, type ChildProcess } from "node:child_process";
import type { Readable } from "node:stream";
import type { ScriptAgentConfig } from "../src/agents/scripts.js";
import { ErrorCode, RelayMeshError, StepTimeoutError, errorToWire } from "../src/errors.js";
import type { StepResultMessage } from "../src/pool/protocol.js";

/** What a script receives for one step attempt (stdin of a one-shot script, a `run` line for a persistent one). */
export interface ScriptRequest {
  taskId: string;
  stepId: string;
  attempt: number;
  input: unknown;
  deps: Record<string, unknown>;
  traceparent: string;
  /** The task's checkpoint values, so a retried step can resume. */
  kv: Record<string, unknown>;
  /** The task's deadline (epoch ms), when it has one. */
  deadlineMs?: number | undefined;
}

/** How a running script reaches the engine. */
export interface ScriptHooks {
  /** Fires on hard cancel, shutdown or a lost lease: kill the process group (SIGTERM, then SIGKILL after killGraceMs). */
  signal: AbortSignal;
  heartbeat(): void;
  /** Durable, fenced write of the task's checkpoint; rejects (a RelayMeshError with code RELAYMESH_ERR_LEASE_LOST) when the lease moved on — then kill the script and fail the step with that error. */
  checkpoint(key: string, value: unknown): Promise<void>;
  progress(pct: number, message: string | null): void;
  /**
   * The script's process group exists (from spawn) / is gone (the leader exited and its leftovers
   * were killed): whoever can end this thread kills the groups still running in it.
   */
  group?(pid: number, running: boolean): void;
}

export interface ScriptLimits {
  /** Largest stdout (one-shot) or answer line (persistent) accepted, in bytes. */
  maxPayloadBytes: number;
  /** Time between SIGTERM and SIGKILL. */
  killGraceMs: number;
}

/** Exit code with which a script says "do not retry" (sysexits EX_CONFIG). */
export const EXIT_NON_RETRYABLE = 78;
/** How much of stderr a failure records. */
export const STDERR_TAIL_BYTES = 4096;
/** How much of an unparsable output a failure shows. */
const SHOWN_OUTPUT_BYTES = 1024;

/** Runs one step attempt as a process of its own; never rejects. */
export function runOneShot(config: ScriptAgentConfig, request: ScriptRequest, hooks: ScriptHooks, limits: ScriptLimits): Promise<StepResultMessage> {
  if (hooks.signal.aborted) return Promise.resolve(errorResult(hooks.signal.reason));
  return new Promise((resolve) => oneShot(config, request, hooks, limits, resolve));
}

type Kill =
  | { kind: "timeout" }
  | { kind: "abort"; reason: unknown }
  | { kind: "too-large" }
  | { kind: "checkpoint"; error: unknown };

type Verdict = { kind: "fatal"; message: string } | { kind: "retry-later"; delayMs: number; message: string };

function oneShot(
  config: ScriptAgentConfig, request: ScriptRequest, hooks: ScriptHooks, limits: ScriptLimits,
  done: (result: StepResultMessage) => void,
): void {
  const label = `script agent "${config.id}" (step "${request.stepId}", attempt ${request.attempt})`;
  const stdout: Buffer[] = [];
  let stdoutBytes = 0;
  const stderr = new Tail();
  let kill: Kill | null = null;
  let verdict: Verdict | null = null;
  let checkpoints: Promise<void> = Promise.resolve();
  let spawnError: Error | null = null;
  let terminating = false;
  let finished = false;
  let timer: NodeJS.Timeout | undefined;

  let child: ChildProcess;
  try {
    child = spawnScript(config, ["pipe", "pipe", "pipe", "pipe"], {
      RELAYMESH_TASK_ID: request.taskId,
      RELAYMESH_STEP_ID: request.stepId,
      RELAYMESH_ATTEMPT: String(request.attempt),
      RELAYMESH_CONTROL_FD: "3",
      TRACEPARENT: request.traceparent,
      ...(request.deadlineMs !== undefined ? { RELAYMESH_DEADLINE_MS: String(request.deadlineMs) } : {}),
    });
  } catch (error) {
    done(failure(new RelayMeshError(ErrorCode.AGENT_FAILED, `${label} could not start ${config.command[0]}: ${(error as Error).message}`, { cause: error })));
    return;
  }

  const pid = child.pid;
  if (pid !== undefined) hooks.group?.(pid, true);
  const terminate = () => {
    if (terminating || pid === undefined) return;
    terminating = true;
    terminateGroup(pid, limits.killGraceMs, () => hooks.group?.(pid, false));
  };
  const stop = (cause: Kill) => {
    kill ??= cause;
    terminate();
  };
  const onAbort = () => stop({ kind: "abort", reason: hooks.signal.reason });
  hooks.signal.addEventListener("abort", onAbort, { once: true });
  timer = setTimeout(() => stop({ kind: "timeout" }), config.timeoutMs);

  child.on("error", (error) => {
    if (child.pid !== undefined) return;
    spawnError = error;
    void finish();
  });
  // The leader is gone: whatever is left in its group is a leftover (and may hold the pipes open).
  child.on("exit", () => {
    clearTimeout(timer);
    terminate();
  });
  child.on("close", (code, signal) => void finish(code, signal));

  // A script that never reads stdin closes it early: EPIPE is not a failure.
  child.stdin?.on("error", () => {});
  child.stdin?.end(JSON.stringify({
    taskId: request.taskId, stepId: request.stepId, attempt: request.attempt, input: request.input,
    deps: request.deps, traceparent: request.traceparent, kv: request.kv,
    ...(request.deadlineMs !== undefined ? { deadlineMs: request.deadlineMs } : {}),
  }) + "\n");

  child.stdout?.on("data", (chunk: Buffer) => {
    if (kill?.kind === "too-large") return;
    stdoutBytes += chunk.length;
    if (stdoutBytes > limits.maxPayloadBytes) {
      stdout.length = 0;
      stop({ kind: "too-large" });
      return;
    }
    stdout.push(chunk);
  });
  child.stderr?.on("data", (chunk: Buffer) => stderr.push(chunk));

  const lines = new LineSplitter(limits.maxPayloadBytes + 65_536, (line) => {
    const msg = parseControl(line);
    if (msg === null) return;
    switch (msg.type) {
      case "heartbeat":
        safely(() => hooks.heartbeat());
        break;
      case "progress":
        safely(() => hooks.progress(msg.pct, msg.message));
        break;
      case "checkpoint":
        checkpoints = checkpoints.then(async () => {
          // After an abort or a refused write, no later checkpoint may land.
          if (kill?.kind === "abort" || kill?.kind === "checkpoint") return;
          try {
            await hooks.checkpoint(msg.key, msg.value);
          } catch (error) {
            stop({ kind: "checkpoint", error });
          }
        });
        break;
      case "fatal":
        verdict = { kind: "fatal", message: msg.message };
        break;
      case "retry-later":
        if (verdict?.kind !== "fatal") verdict = { kind: "retry-later", delayMs: msg.delayMs, message: msg.message };
        break;
    }
  });
  const control = child.stdio[3] as Readable | null | undefined;
  control?.setEncoding("utf8");
  control?.on("data", (text: string) => lines.push(text));
  control?.on("end", () => lines.end());
  control?.on("error", () => {});

  async function finish(code: number | null = null, signal: NodeJS.Signals | null = null): Promise<void> {
    if (finished) return;
    finished = true;
    clearTimeout(timer);
    if (kill?.kind !== "abort") {
      // The output must never commit before the last checkpoint; an abort need not wait for them.
      await untilAborted(checkpoints, hooks.signal);
    }
    hooks.signal.removeEventListener("abort", onAbort);
    if (hooks.signal.aborted && kill === null) kill = { kind: "abort", reason: hooks.signal.reason };
    done(outcome(code, signal));
  }

  function outcome(code: number | null, signal: NodeJS.Signals | null): StepResultMessage {
    const tail = stderr.text();
    const withStderr = (text: string) => (tail ? `${text}; stderr (last ${STDERR_TAIL_BYTES} bytes): ${tail}` : `${text}; stderr was empty`);
    const details = (kind: string, extra: Record<string, unknown> = {}) =>
      ({ agent: config.id, kind, exitCode: code, signal, stderr: tail, ...extra });
    const k = kill as Kill | null;
    if (k?.kind === "checkpoint") return errorResult(k.error);
    if (k?.kind === "abort") return errorResult(k.reason);
    if (k?.kind === "timeout") {
      return failure(new StepTimeoutError(
        `${label} timed out after ${config.timeoutMs} ms; its process group got SIGTERM, then SIGKILL after ${limits.killGraceMs} ms if still running`,
        { details: details("timeout", { timeoutMs: config.timeoutMs }) }));
    }
    if (k?.kind === "too-large") {
      return failure(new RelayMeshError(ErrorCode.AGENT_FAILED,
        `${label} wrote more than maxPayloadBytes (${limits.maxPayloadBytes}) on stdout; it was killed`,
        { details: details("output-too-large", { maxPayloadBytes: limits.maxPayloadBytes, bytesRead: stdoutBytes }) }));
    }
    if (spawnError !== null) {
      const err: Error = spawnError;
      return failure(new RelayMeshError(ErrorCode.AGENT_FAILED,
        `${label} could not start ${config.command[0]}: ${err.message}; check "command" in agents/scripts.json`,
        { cause: err, details: details("spawn") }));
    }
    const v = verdict as Verdict | null;
    if (v?.kind === "fatal") {
      return failure(new RelayMeshError(ErrorCode.NON_RETRYABLE, withStderr(`${label} reported a fatal error: ${v.message}`),
        { details: details("fatal", { reported: v.message }) }), false);
    }
    if (v?.kind === "retry-later") {
      return failure(new RelayMeshError(ErrorCode.RETRY_LATER, `${label} asked to be retried after ${v.delayMs} ms: ${v.message}`,
        { details: details("retry-later", { delayMs: v.delayMs, reported: v.message }) }), true, v.delayMs);
    }
    if (signal !== null) {
      return failure(new RelayMeshError(ErrorCode.AGENT_FAILED, withStderr(`${label} was killed by signal ${signal}`),
        { details: details("signal") }));
    }
    if (code === EXIT_NON_RETRYABLE) {
      return failure(new RelayMeshError(ErrorCode.NON_RETRYABLE,
        withStderr(`${label} exited with code ${EXIT_NON_RETRYABLE} (do not retry)`), { details: details("exit") }), false);
    }
    if (code !== 0) {
      return failure(new RelayMeshError(ErrorCode.AGENT_FAILED, withStderr(`${label} exited with code ${code}`), { details: details("exit") }));
    }
    const text = Buffer.concat(stdout, stdoutBytes).toString("utf8");
    try {
      return { type: "result", outputJson: JSON.stringify(JSON.parse(text)) };
    } catch (error) {
      const shown = shorten(text, SHOWN_OUTPUT_BYTES);
      const what = text.trim() === "" ? "nothing on stdout" : `invalid JSON on stdout (${(error as Error).message}): ${JSON.stringify(shown)}`;
      return failure(new RelayMeshError(ErrorCode.AGENT_FAILED,
        `${label} exited with code 0 but wrote ${what}; a script must write exactly one JSON document`,
        { details: details("invalid-output", { stdout: shown, bytesRead: stdoutBytes }) }));
    }
  }
}

/** Spawns a script agent's process in a process group of its own, without a shell. */
export function spawnScript(config: ScriptAgentConfig, stdio: ("pipe" | "ignore")[], env: Record<string, string>): ChildProcess {
  const [program, ...args] = config.command as [string, ...string[]];
  return spawn(program, args, {
    shell: false,
    detached: true,
    stdio,
    env: { ...process.env, ...config.env, ...env },
    ...(config.cwd !== undefined ? { cwd: config.cwd } : {}),
  });
}

/** Signals a process group; false when it no longer exists. */
export function signalGroup(pid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(-pid, signal);
    return true;
  } catch {
    return false;
  }
}

/** SIGTERM to the group now and SIGKILL after `graceMs`, unless the group was already empty; then `gone`. */
export function terminateGroup(pid: number, graceMs: number, gone?: () => void): void {
  if (!signalGroup(pid, "SIGTERM")) return gone?.();
  setTimeout(() => { signalGroup(pid, "SIGKILL"); gone?.(); }, graceMs);
}

/** A step failure as the engine records it. */
export function failure(error: RelayMeshError, retryable = true, retryDelayMs: number | null = null): StepResultMessage {
  const wire = errorToWire(error);
  delete wire.stack;
  return { type: "error", error: wire, retryable, retryDelayMs };
}

/** A failure that carries an error made elsewhere (an abort reason, a refused checkpoint). */
export function errorResult(error: unknown): StepResultMessage {
  const wire = errorToWire(error);
  if (wire.stack && wire.stack.length > 4096) wire.stack = wire.stack.slice(0, 4096);
  const retryable = wire.code !== ErrorCode.NON_RETRYABLE && wire.code !== ErrorCode.INVALID_INPUT;
  return { type: "error", error: wire, retryable, retryDelayMs: null };
}

/** A control message from a script (fd 3 of a one-shot script; a persistent one adds `id`). */
export type ControlLine =
  | { type: "heartbeat" }
  | { type: "checkpoint"; key: string; value: unknown }
  | { type: "progress"; pct: number; message: string | null }
  | { type: "fatal"; message: string }
  | { type: "retry-later"; delayMs: number; message: string };

/** Parses one control line; null when it is malformed or of an unknown type. */
export function parseControl(line: string): ControlLine | null {
  const m = parseObject(line);
  return m === null ? null : controlOf(m);
}

export function controlOf(m: Record<string, unknown>): ControlLine | null {
  switch (m.type) {
    case "heartbeat":
      return { type: "heartbeat" };
    case "checkpoint":
      return typeof m.key === "string" && m.key.length > 0 && "value" in m ? { type: "checkpoint", key: m.key, value: m.value } : null;
    case "progress":
      return typeof m.pct === "number" && Number.isFinite(m.pct)
        ? { type: "progress", pct: m.pct, message: typeof m.message === "string" ? m.message : null }
        : null;
    case "fatal":
      return { type: "fatal", message: typeof m.message === "string" ? m.message : "(no message)" };
    case "retry-later":
      return typeof m.delayMs === "number" && Number.isFinite(m.delayMs) && m.delayMs >= 0
        ? { type: "retry-later", delayMs: Math.round(m.delayMs), message: typeof m.message === "string" ? m.message : "(no message)" }
        : null;
    default:
      return null;
  }
}

/** A JSON object, or null. */
export function parseObject(line: string): Record<string, unknown> | null {
  try {
    const value: unknown = JSON.parse(line);
    return typeof value === "object" && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

/** Keeps the last `limit` bytes written to it. */
export class Tail {
  #chunks: Buffer[] = [];
  #size = 0;
  constructor(readonly limit = STDERR_TAIL_BYTES) {}

  push(chunk: Buffer): void {
    this.#chunks.push(chunk);
    this.#size += chunk.length;
    if (this.#size > 2 * this.limit) this.#compact();
  }

  text(): string {
    this.#compact();
    return this.#chunks[0]?.toString("utf8") ?? "";
  }

  #compact(): void {
    const all = Buffer.concat(this.#chunks, this.#size);
    const kept = all.subarray(Math.max(0, all.length - this.limit));
    this.#chunks = [kept];
    this.#size = kept.length;
  }
}

/** Calls `onLine` for every complete, non-empty line; a line longer than `maxLine` is dropped (`onOverflow`). */
export class LineSplitter {
  #partial = "";
  #dropping = false;
  constructor(
    readonly maxLine: number,
    readonly onLine: (line: string) => void,
    readonly onOverflow: () => void = () => {},
  ) {}

  push(text: string): void {
    let start = 0;
    let nl = text.indexOf("\n");
    while (nl !== -1) {
      if (!this.#dropping) {
        const line = this.#partial.length > 0 ? this.#partial + text.slice(start, nl) : text.slice(start, nl);
        if (line.length > 0) this.onLine(line);
      }
      this.#partial = "";
      this.#dropping = false;
      start = nl + 1;
      nl = text.indexOf("\n", start);
    }
    if (this.#dropping || start === text.length) return;
    this.#partial += text.slice(start);
    if (this.#partial.length > this.maxLine) {
      this.#partial = "";
      this.#dropping = true;
      this.onOverflow();
    }
  }

  end(): void {
    if (!this.#dropping && this.#partial.length > 0) this.onLine(this.#partial);
    this.#partial = "";
  }
}

/** Runs a hook; one that throws must not take the runner down. */
export function safely(fn: () => void): void {
  try {
    fn();
  } catch {
    // A hook that throws must not take the runner down.
  }
}

/** Settles with `promise` or as soon as `signal` fires, whichever comes first. */
export function untilAborted(promise: Promise<void>, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const onAbort = () => resolve();
    signal.addEventListener("abort", onAbort, { once: true });
    void promise.then(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    });
  });
}

function shorten(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max)}… (${Buffer.byteLength(text)} bytes in all)` : text;
}
