import { MAX_TIMER_MS } from "../model/duration.js";
import type { ChildProcess } from "node:child_process";
import { ErrorCode, RelayMeshError, StepTimeoutError } from "../errors.js";
import type { StepResultMessage } from "../pool/protocol.js";
import type { ScriptAgentConfig } from "./scripts.js";
import {
  LineSplitter, STDERR_TAIL_BYTES, Tail, controlOf, errorResult, failure, parseObject, safely, spawnScript, terminateGroup,
  untilAborted, type ScriptHooks, type ScriptRequest,
} from "../../workers/script-runner.js";

export interface PersistentScriptAgentOptions {
  /** Largest answer line accepted, in bytes. */
  maxPayloadBytes: number;
  /** How long a cancelled request may take to answer before its instance is killed; also SIGTERM → SIGKILL. */
  killGraceMs: number;
  /** Delay before restarting a failed instance: base * 2^(failures - 1), capped (default: 100 ms … 10 s). */
  restartBackoffMs?: { base: number; max: number };
}

/** One request, from `run()` until it is answered or its instance is gone. */
interface Pending {
  id: string;
  request: ScriptRequest;
  hooks: ScriptHooks;
  /** waiting: no live instance yet; running: sent; answered: waits for its checkpoints; cancelling: failed already, its instance owes an answer. */
  state: "waiting" | "running" | "answered" | "cancelling";
  proc: Proc | null;
  checkpoints: Promise<void>;
  settled: boolean;
  timer: NodeJS.Timeout | undefined;
  graceTimer: NodeJS.Timeout | undefined;
  onAbort: () => void;
  resolve: (result: StepResultMessage) => void;
}

interface Slot {
  index: number;
  proc: Proc | null;
  /** Failures since the instance last served a request. */
  failures: number;
  restartTimer: NodeJS.Timeout | undefined;
}

/** One process of a slot; a restart makes a new one. */
interface Proc {
  slot: Slot;
  child: ChildProcess;
  inFlight: Map<string, Pending>;
  stderr: Tail;
  /** The process exited (it may still be closing its pipes). */
  exited: boolean;
  /** Its requests were failed and it will not be used again. */
  dead: boolean;
  closed: Promise<void>;
}

/**
 * A script agent kept running between steps (`"mode": "persistent"`): `instances` processes speak
 * JSON lines (CONTRACT.md). Requests go to the instance with the fewest in flight. A crash, a
 * request that outlives its timeout and ignores `cancel`, or garbage on stdout fails only that
 * instance's requests; the instance is restarted with exponential backoff. Runs on the main
 * thread: every operation is asynchronous.
 */
export class PersistentScriptAgent {
  readonly #config: ScriptAgentConfig;
  readonly #options: Required<PersistentScriptAgentOptions>;
  readonly #slots: Slot[];
  readonly #waiting: Pending[] = [];
  /** Every process not yet closed, restarted ones' predecessors included. */
  readonly #procs = new Set<Proc>();
  #started = false;
  #closing: Promise<void> | undefined;
  #nextId = 0;
  #rotate = 0;

  constructor(config: ScriptAgentConfig, options: PersistentScriptAgentOptions) {
    this.#config = config;
    this.#options = { restartBackoffMs: { base: 100, max: 10_000 }, ...options };
    this.#slots = Array.from({ length: Math.max(1, config.instances) }, (_, index) => ({ index, proc: null, failures: 0, restartTimer: undefined }));
  }

  /** Runs one request; never rejects (failures come back as `{ type: "error" }`). */
  run(request: ScriptRequest, hooks: ScriptHooks): Promise<StepResultMessage> {
    if (this.#closing) return Promise.resolve(failure(this.#closingError()));
    if (hooks.signal.aborted) return Promise.resolve(errorResult(hooks.signal.reason));
    if (!this.#started) {
      this.#started = true;
      for (const slot of this.#slots) this.#start(slot);
    }
    return new Promise((resolve) => {
      const p: Pending = {
        id: (this.#nextId++).toString(36), request, hooks, state: "waiting", proc: null, checkpoints: Promise.resolve(),
        settled: false, timer: undefined, graceTimer: undefined, onAbort: () => this.#cancel(p, errorResult(hooks.signal.reason)), resolve,
      };
      p.timer = setTimeout(() => this.#cancel(p, failure(new StepTimeoutError(
        `${this.#label(p)} timed out after ${this.#config.timeoutMs} ms; sent "cancel"`,
        { details: { agent: this.#config.id, kind: "timeout", timeoutMs: this.#config.timeoutMs } }))), this.#config.timeoutMs);
      hooks.signal.addEventListener("abort", p.onAbort, { once: true });
      this.#dispatch(p);
    });
  }

  /** Ends every instance (stdin closed, then SIGTERM, then SIGKILL) and fails pending requests. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    const error = this.#closingError();
    for (const p of this.#waiting.splice(0)) this.#settle(p, failure(error));
    for (const slot of this.#slots) clearTimeout(slot.restartTimer);
    const closing: Promise<void>[] = [];
    for (const proc of this.#procs) {
      this.#retire(proc, () => failure(error));
      closing.push(this.#stop(proc));
    }
    await Promise.all(closing);
  }

  /** Closes stdin; SIGTERM to the group after killGraceMs, SIGKILL after another. */
  async #stop(proc: Proc): Promise<void> {
    proc.child.stdin?.end();
    const grace = this.#options.killGraceMs;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<void>((resolve) => { timer = setTimeout(resolve, grace); });
    await Promise.race([proc.closed, late]);
    clearTimeout(timer);
    if (!proc.exited && proc.child.pid !== undefined) terminateGroup(proc.child.pid, grace);
    await proc.closed;
  }

  #closingError(): RelayMeshError {
    return new RelayMeshError(ErrorCode.ABORTED, `persistent script agent "${this.#config.id}" is closing; the step will run again elsewhere or after a restart`);
  }

  #start(slot: Slot): void {
    slot.restartTimer = undefined;
    if (this.#closing) return;
    let child: ChildProcess;
    try {
      child = spawnScript(this.#config, ["pipe", "pipe", "pipe"], { RELAYMESH_AGENT_ID: this.#config.id, RELAYMESH_INSTANCE: String(slot.index) });
    } catch (error) {
      slot.failures++;
      this.#spawnFailed(slot, error as Error);
      return;
    }
    let markClosed: () => void = () => {};
    const proc: Proc = {
      slot, child, inFlight: new Map(), stderr: new Tail(), exited: false, dead: false,
      closed: new Promise((resolve) => { markClosed = resolve; }),
    };
    slot.proc = proc;
    this.#procs.add(proc);
    void proc.closed.then(() => this.#procs.delete(proc));
    child.on("error", (error) => {
      if (child.pid !== undefined) return;
      proc.exited = true;
      markClosed();
      this.#fail(proc, `could not start ${this.#config.command[0]}: ${error.message}`);
      this.#spawnFailed(slot, error);
    });
    child.on("exit", () => {
      proc.exited = true;
      // Leftovers of its group would keep the pipes open.
      if (child.pid !== undefined) terminateGroup(child.pid, this.#options.killGraceMs);
    });
    child.on("close", (code, signal) => {
      proc.exited = true;
      markClosed();
      this.#fail(proc, signal !== null ? `was killed by signal ${signal}` : `exited with code ${code}`);
    });
    child.stdin?.on("error", () => {});
    child.stderr?.on("data", (chunk: Buffer) => proc.stderr.push(chunk));
    const lines = new LineSplitter(
      this.#options.maxPayloadBytes + 65_536,
      (line) => this.#onLine(proc, line),
      () => this.#kill(proc, `wrote a line over ${this.#options.maxPayloadBytes + 65_536} characters on stdout`),
    );
    child.stdout?.setEncoding("utf8");
    child.stdout?.on("data", (text: string) => lines.push(text));
    for (const p of this.#waiting.splice(0)) this.#dispatch(p);
  }

  /** The program cannot be started: requests waiting for an instance fail now rather than at their timeout. */
  #spawnFailed(slot: Slot, error: Error): void {
    const err = new RelayMeshError(ErrorCode.AGENT_FAILED,
      `persistent script agent "${this.#config.id}" could not start ${this.#config.command[0]}: ${error.message}; check "command" in agents/scripts.json`,
      { cause: error, details: { agent: this.#config.id, kind: "spawn" } });
    if (!this.#live()) for (const p of this.#waiting.splice(0)) this.#settle(p, failure(err));
    if (slot.proc === null || slot.proc.dead) this.#scheduleRestart(slot);
  }

  #live(): boolean {
    return this.#slots.some((s) => s.proc !== null && !s.proc.dead && !s.proc.exited);
  }

  #dispatch(p: Pending): void {
    if (p.settled) return;
    let best: Proc | null = null;
    const n = this.#slots.length;
    this.#rotate = (this.#rotate + 1) % n;
    for (let k = 0; k < n; k++) {
      const proc = this.#slots[(this.#rotate + k) % n]!.proc;
      if (proc === null || proc.dead || proc.exited) continue;
      if (best === null || proc.inFlight.size < best.inFlight.size) best = proc;
    }
    if (best === null) {
      p.state = "waiting";
      this.#waiting.push(p);
      return;
    }
    p.state = "running";
    p.proc = best;
    best.inFlight.set(p.id, p);
    const r = p.request;
    best.child.stdin?.write(JSON.stringify({
      type: "run", id: p.id, taskId: r.taskId, stepId: r.stepId, attempt: r.attempt, input: r.input, deps: r.deps,
      traceparent: r.traceparent, kv: r.kv, ...(r.deadlineMs !== undefined ? { deadlineMs: r.deadlineMs } : {}),
    }) + "\n");
  }

  #onLine(proc: Proc, line: string): void {
    if (proc.dead) return;
    const m = parseObject(line);
    const type = m?.type;
    if (m === null || (type !== "result" && type !== "error" && type !== "heartbeat" && type !== "checkpoint" && type !== "progress")) {
      const shown = line.length > 200 ? `${line.slice(0, 200)}…` : line;
      this.#kill(proc, `wrote garbage on stdout (not a JSON object with a known "type"): ${JSON.stringify(shown)}`);
      return;
    }
    const p = typeof m.id === "string" ? proc.inFlight.get(m.id) : undefined;
    if (p === undefined) return;
    if (type === "result" || type === "error") {
      this.#answered(proc, p, type === "result" ? this.#resultOf(p, m, line) : this.#errorOf(p, m));
      return;
    }
    if (p.state !== "running") return;
    const c = controlOf(m);
    if (c === null) return;
    if (c.type === "heartbeat") safely(() => p.hooks.heartbeat());
    else if (c.type === "progress") safely(() => p.hooks.progress(c.pct, c.message));
    else if (c.type === "checkpoint") {
      p.checkpoints = p.checkpoints.then(async () => {
        if (p.settled) return;
        try {
          await p.hooks.checkpoint(c.key, c.value);
        } catch (error) {
          this.#cancel(p, errorResult(error));
        }
      });
    }
  }

  #resultOf(p: Pending, m: Record<string, unknown>, line: string): StepResultMessage {
    const max = this.#options.maxPayloadBytes;
    const outputJson = JSON.stringify(m.output === undefined ? null : m.output);
    if (line.length > max / 4 && Buffer.byteLength(outputJson) > max) {
      return failure(new RelayMeshError(ErrorCode.AGENT_FAILED,
        `${this.#label(p)} answered ${Buffer.byteLength(outputJson)} bytes of output, over maxPayloadBytes (${max})`,
        { details: { agent: this.#config.id, kind: "output-too-large", maxPayloadBytes: max } }));
    }
    return { type: "result", outputJson };
  }

  #errorOf(p: Pending, m: Record<string, unknown>): StepResultMessage {
    const message = typeof m.message === "string" ? m.message : "(no message)";
    const details = { agent: this.#config.id, kind: "error", reported: message };
    if (typeof m.delayMs === "number" && Number.isFinite(m.delayMs) && m.delayMs >= 0) {
      const delayMs = Math.min(Math.round(m.delayMs), MAX_TIMER_MS);
      return failure(new RelayMeshError(ErrorCode.RETRY_LATER, `${this.#label(p)} asked to be retried after ${delayMs} ms: ${message}`,
        { details: { ...details, delayMs } }), true, delayMs);
    }
    if (m.retryable === false) {
      return failure(new RelayMeshError(ErrorCode.NON_RETRYABLE, `${this.#label(p)} failed (do not retry): ${message}`, { details }), false);
    }
    return failure(new RelayMeshError(ErrorCode.AGENT_FAILED, `${this.#label(p)} failed: ${message}`, { details }));
  }

  #answered(proc: Proc, p: Pending, result: StepResultMessage): void {
    proc.inFlight.delete(p.id);
    clearTimeout(p.graceTimer);
    proc.slot.failures = 0;
    if (p.settled) return;
    p.state = "answered";
    // The answer must never commit before the request's last checkpoint.
    void untilAborted(p.checkpoints, p.hooks.signal).then(() => this.#settle(p, result));
  }

  /** Fails a request now; its instance gets `cancel` and is killed if it does not answer within killGraceMs. */
  #cancel(p: Pending, result: StepResultMessage): void {
    if (p.settled) return;
    this.#settle(p, result);
    if (p.state === "waiting") {
      const i = this.#waiting.indexOf(p);
      if (i !== -1) this.#waiting.splice(i, 1);
      return;
    }
    const proc = p.proc;
    if (p.state !== "running" || proc === null || proc.dead) return;
    p.state = "cancelling";
    proc.child.stdin?.write(JSON.stringify({ type: "cancel", id: p.id }) + "\n");
    p.graceTimer = setTimeout(() => {
      if (proc.inFlight.has(p.id)) {
        this.#kill(proc, `did not answer "cancel" of request ${p.id} (step "${p.request.stepId}") within ${this.#options.killGraceMs} ms`);
      }
    }, this.#options.killGraceMs);
  }

  #settle(p: Pending, result: StepResultMessage): void {
    if (p.settled) return;
    p.settled = true;
    clearTimeout(p.timer);
    p.hooks.signal.removeEventListener("abort", p.onAbort);
    p.resolve(result);
  }

  /** Kills an instance that misbehaved; its requests fail with `reason`. */
  #kill(proc: Proc, reason: string): void {
    if (proc.dead) return;
    if (!proc.exited && proc.child.pid !== undefined) terminateGroup(proc.child.pid, this.#options.killGraceMs);
    this.#fail(proc, `${reason}; it was killed`);
  }

  /** Fails the requests in flight on `proc` and restarts its slot. */
  #fail(proc: Proc, reason: string): void {
    if (proc.dead) return;
    const tail = proc.stderr.text();
    const stderr = tail ? `; stderr (last ${STDERR_TAIL_BYTES} bytes): ${tail}` : "; stderr was empty";
    const instance = `instance #${proc.slot.index} (pid ${proc.child.pid ?? "none"})`;
    this.#retire(proc, (p) => failure(new RelayMeshError(ErrorCode.AGENT_FAILED, `${this.#label(p)} failed: ${instance} ${reason}${stderr}`,
      { details: { agent: this.#config.id, kind: "instance-failed", instance: proc.slot.index, reason, stderr: tail } })));
    proc.slot.failures++;
    this.#scheduleRestart(proc.slot);
  }

  #retire(proc: Proc, fail: (p: Pending) => StepResultMessage): void {
    proc.dead = true;
    for (const p of proc.inFlight.values()) {
      clearTimeout(p.graceTimer);
      this.#settle(p, fail(p));
    }
    proc.inFlight.clear();
  }

  #scheduleRestart(slot: Slot): void {
    if (this.#closing || slot.restartTimer !== undefined) return;
    const { base, max } = this.#options.restartBackoffMs;
    const delay = Math.min(max, base * 2 ** Math.min(30, Math.max(0, slot.failures - 1)));
    slot.restartTimer = setTimeout(() => this.#start(slot), delay);
  }

  #label(p: Pending): string {
    return `persistent script agent "${this.#config.id}" (step "${p.request.stepId}", attempt ${p.request.attempt}, request ${p.id})`;
  }
}
