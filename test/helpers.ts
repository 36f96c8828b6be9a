import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** The repository root (tests run from dist/test/...). */
export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
export const BIN = join(REPO, "bin", "relaymesh.js");

/**
 * The store the engine and process tests run on: "sqlite" (each root's own file), or
 * "postgres" when RELAYMESH_TEST_STORE=postgres (scripts/test.mjs runs them once more that way
 * when RELAYMESH_PG_URL is set): then every root gets a schema of its own on that server.
 */
export const TEST_STORE: "sqlite" | "postgres" = process.env.RELAYMESH_TEST_STORE === "postgres" ? "postgres" : "sqlite";

/** Prefix of the schemas a PostgreSQL test run creates (scripts/test.mjs drops them all after the run). */
export const TEST_SCHEMA_PREFIX = "rm_t_";
const schemas = new Map<string, string>();

/** The store URL of a root in this test run: undefined on SQLite, the root's own schema on PostgreSQL. */
export function storeFor(root: string): string | undefined {
  if (TEST_STORE === "sqlite") return undefined;
  const key = resolve(root);
  let url = schemas.get(key);
  if (!url) {
    const base = process.env.RELAYMESH_PG_URL;
    if (!base) throw new Error("RELAYMESH_TEST_STORE=postgres needs RELAYMESH_PG_URL");
    const u = new URL(base);
    u.searchParams.set("schema", `${TEST_SCHEMA_PREFIX}${process.pid}_${schemas.size}_${Math.random().toString(36).slice(2, 8)}`);
    url = u.toString();
    schemas.set(key, url);
  }
  return url;
}

/** A fresh, empty folder; removed by the returned cleanup. */
export function tempRoot(prefix = "relaymesh-test-"): { root: string; cleanup: () => void } {
  const root = mkdtempSync(join(tmpdir(), prefix));
  return { root, cleanup: () => rmSync(root, { recursive: true, force: true }) };
}

/** The environment of a CLI process on `args`' root: its store on PostgreSQL runs. */
function storeEnv(args: string[], env: NodeJS.ProcessEnv | undefined): NodeJS.ProcessEnv {
  if (TEST_STORE === "sqlite" || env?.RELAYMESH_STORE !== undefined) return {};
  let root = env?.RELAYMESH_ROOT;
  args.forEach((a, i) => {
    if (a === "--root" && args[i + 1] !== undefined) root = args[i + 1];
    else if (a.startsWith("--root=")) root = a.slice("--root=".length);
  });
  return root ? { RELAYMESH_STORE: storeFor(root) } : {};
}

/** Writes `<root>/relaymesh-settings.json`. */
export function writeSettings(root: string, settings: Record<string, unknown>): void {
  mkdirSync(root, { recursive: true });
  writeFileSync(join(root, "relaymesh-settings.json"), JSON.stringify(settings));
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** stdout parsed as JSON (throws with the output when it is not). */
  json<T = any>(): T;
}

/** Runs the relaymesh CLI to completion. */
export function cli(args: string[], options: { env?: NodeJS.ProcessEnv; timeoutMs?: number; cwd?: string } = {}): Promise<CliResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      cwd: options.cwd ?? REPO,
      env: { ...process.env, RELAYMESH_ROOT: "", RELAYMESH_STORE: "", ...storeEnv(args, options.env), ...options.env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`relaymesh ${args.join(" ")} did not exit within ${options.timeoutMs ?? 60_000} ms\nstderr: ${stderr}`));
    }, options.timeoutMs ?? 60_000);
    child.on("error", reject);
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolvePromise({
        code, signal, stdout, stderr,
        json() {
          try {
            return JSON.parse(stdout);
          } catch {
            throw new Error(`stdout of relaymesh ${args.join(" ")} is not JSON:\n${stdout}\nstderr: ${stderr}`);
          }
        },
      });
    });
  });
}

/** A long-running CLI process (e.g. `worker`), with its output collected. */
export interface Spawned {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Resolves when the process has exited. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Resolves once stderr contains `text`. */
  waitForStderr(text: string, timeoutMs?: number): Promise<void>;
}

export function spawnCli(args: string[], options: { env?: NodeJS.ProcessEnv } = {}): Spawned {
  const child = spawn(process.execPath, [BIN, ...args], {
    cwd: REPO,
    env: { ...process.env, RELAYMESH_ROOT: "", RELAYMESH_STORE: "", ...storeEnv(args, options.env), ...options.env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  const waiters: { text: string; resolve: () => void }[] = [];
  child.stdout!.on("data", (d) => (stdout += d));
  child.stderr!.on("data", (d) => {
    stderr += d;
    for (const w of waiters.filter((w) => stderr.includes(w.text))) {
      waiters.splice(waiters.indexOf(w), 1);
      w.resolve();
    }
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.on("close", (code, signal) => r({ code, signal })));
  return {
    child, exited,
    stdout: () => stdout,
    stderr: () => stderr,
    waitForStderr(text, timeoutMs = 30_000) {
      if (stderr.includes(text)) return Promise.resolve();
      return withDeadline(new Promise<void>((r) => waiters.push({ text, resolve: r })), timeoutMs, `stderr to contain "${text}" (stderr so far: ${stderr})`);
    },
  };
}

/** Rejects with a message naming what was awaited when `promise` takes longer than `ms`. */
export function withDeadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    promise,
    new Promise<T>((_, reject) => { timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms); }),
  ]).finally(() => clearTimeout(timer));
}

/** Polls `check` until it returns a truthy value, or fails naming `what` after `timeoutMs`. */
export async function waitUntil<T>(check: () => T | Promise<T>, what: string, timeoutMs = 30_000, intervalMs = 50): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
