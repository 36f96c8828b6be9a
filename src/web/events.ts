import type { ServerResponse } from "node:http";
import type { RelayMesh } from "../engine.js";
import type { TaskRecord } from "../store/types.js";
import { taskSummaryView } from "../model/views.js";

/**
 * Server-Sent Events: while at least one client listens, polls the store every `pollMs` for
 * tasks whose updatedAtMs changed (the newest tasks plus every unfinished one) and sends each
 * as `event: task`; a heartbeat comment every `heartbeatMs` keeps proxies from closing the stream.
 */
export class TaskEventHub {
  readonly #mesh: RelayMesh;
  readonly #pollMs: number;
  readonly #heartbeatMs: number;
  readonly #clients = new Set<ServerResponse>();
  readonly #seen = new Map<string, number>();
  #timer: NodeJS.Timeout | null = null;
  #heartbeat: NodeJS.Timeout | null = null;
  #polling = false;
  #starting: Promise<void> | null = null;

  constructor(mesh: RelayMesh, options: { pollMs?: number; heartbeatMs?: number } = {}) {
    this.#mesh = mesh;
    this.#pollMs = options.pollMs ?? 500;
    this.#heartbeatMs = options.heartbeatMs ?? 15_000;
  }

  async add(res: ServerResponse): Promise<void> {
    // The first poll only records what exists (a new client is not flooded); it ends before
    // ": connected" is sent, so every change after that is seen.
    while (this.#timer === null) {
      this.#starting ??= this.#poll(false).then(() => {
        this.#timer ??= setInterval(() => void this.#poll(true), this.#pollMs);
        this.#heartbeat ??= setInterval(() => this.#broadcast(`: heartbeat ${Date.now()}\n\n`), this.#heartbeatMs);
      });
      await this.#starting;
    }
    if (res.destroyed) return this.#remove(res);
    res.writeHead(200, { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-store", connection: "keep-alive", "x-accel-buffering": "no" });
    res.write(`retry: 2000\n: connected\n\n`);
    this.#clients.add(res);
    res.on("close", () => this.#remove(res));
  }

  /** Ends every stream (on shutdown). */
  close(): void {
    for (const res of this.#clients) res.end();
    this.#clients.clear();
    this.#stop();
  }

  #remove(res: ServerResponse): void {
    this.#clients.delete(res);
    if (this.#clients.size === 0) this.#stop();
  }

  #stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    if (this.#heartbeat) clearInterval(this.#heartbeat);
    this.#timer = this.#heartbeat = null;
    this.#starting = null;
    this.#seen.clear();
  }

  async #poll(emit: boolean): Promise<void> {
    if (this.#polling) return;
    this.#polling = true;
    try {
      const batches = await Promise.all([
        this.#mesh.listTasks({ limit: 200 }),
        this.#mesh.listTasks({ status: "RUNNING", limit: 1000 }),
        this.#mesh.listTasks({ status: "PENDING", limit: 1000 }),
      ]);
      const tasks = new Map<string, TaskRecord>();
      for (const b of batches) for (const t of b.tasks) tasks.set(t.taskId, t);
      for (const t of tasks.values()) {
        if (this.#seen.get(t.taskId) === t.updatedAtMs) continue;
        this.#seen.set(t.taskId, t.updatedAtMs);
        if (emit) this.#broadcast(`event: task\nid: ${t.taskId}:${t.updatedAtMs}\ndata: ${JSON.stringify(taskSummaryView(t))}\n\n`);
      }
      if (this.#seen.size > 20_000) for (const id of [...this.#seen.keys()].slice(0, 10_000)) this.#seen.delete(id);
    } catch (error) {
      this.#broadcast(`event: error\ndata: ${JSON.stringify({ message: (error as Error).message })}\n\n`);
    } finally {
      this.#polling = false;
    }
  }

  #broadcast(text: string): void {
    for (const res of this.#clients) res.write(text);
  }
}
