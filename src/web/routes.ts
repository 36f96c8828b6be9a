import { z } from "zod";
import type { RelayMesh } from "../engine.js";
import { TASK_STATUSES } from "../store/types.js";
import { taskSummaryView, taskView, workflowView } from "../model/views.js";
import { HttpError } from "./http.js";

/** Parameters of a request: the query string merged with the body (the body wins). */
export type Params = Record<string, unknown>;

/** A read route's answer: a JSON body, or raw text (for /metrics). */
export type ReadResult = { json: unknown } | { text: string; contentType: string };

const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);
const time = z.union([z.number(), z.string()]).transform((v, ctx) => {
  const ms = typeof v === "number" ? v : /^\d+$/.test(v) ? Number(v) : Date.parse(v);
  if (!Number.isFinite(ms)) {
    ctx.addIssue({ code: "custom", message: `expected ms since the epoch or an ISO-8601 time, got "${v}"` });
    return z.NEVER;
  }
  return ms;
});
const taskId = z.string().min(1).max(200);

const TasksQuery = z.object({ status: z.enum(TASK_STATUSES).optional(), limit: int(1, 10_000).default(50), offset: int(0, Number.MAX_SAFE_INTEGER).default(0) });
const DeadQuery = z.object({ limit: int(1, 10_000).default(50), offset: int(0, Number.MAX_SAFE_INTEGER).default(0) });
const AuditQuery = z.object({ taskId: taskId.optional(), action: z.string().min(1).optional(), from: time.optional(), to: time.optional(), limit: int(1, 100_000).default(100) });
const CancelBody = z.object({ taskId, mode: z.enum(["hard", "soft"]).default("hard"), reason: z.string().max(1000).optional() });
const ReplayBody = z.object({ taskId });
const ReplayBatchBody = z.object({ status: z.enum(TASK_STATUSES).default("DEAD_LETTER"), limit: int(1, 1000).default(100) });

/** Parses at the door: a bad parameter is a 400 naming it. */
function parse<T extends z.ZodType>(schema: T, params: Params): z.output<T> {
  const result = schema.safeParse(params);
  if (!result.success) throw new HttpError(400, "bad_request", z.prettifyError(result.error));
  return result.data;
}

/** Read routes by path; `:id` routes are matched in `readRoute`. */
export function readRoute(path: string): ((mesh: RelayMesh, params: Params, extra: () => WebCounters) => Promise<ReadResult>) | null {
  const byId = /^\/api\/(tasks|workflow)\/([^/]+)$/.exec(path);
  if (byId) {
    const id = decodeURIComponent(byId[2]!);
    return async (mesh) => {
      const task = await mesh.getTask(id);
      return { json: byId[1] === "tasks" ? taskView(task) : workflowView(task) };
    };
  }
  switch (path) {
    case "/api/tasks":
      return async (mesh, params) => {
        const q = parse(TasksQuery, params);
        const { tasks, total } = await mesh.listTasks({ ...(q.status ? { status: q.status } : {}), limit: q.limit, offset: q.offset });
        return { json: { tasks: tasks.map(taskSummaryView), total } };
      };
    case "/api/dead":
      return async (mesh, params) => {
        const q = parse(DeadQuery, params);
        const { tasks, total } = await mesh.listTasks({ status: "DEAD_LETTER", limit: q.limit, offset: q.offset });
        const views = await Promise.all(tasks.map(async (t) => taskView(await mesh.getTask(t.taskId))));
        return { json: { tasks: views, total } };
      };
    case "/api/audit-query":
      return async (mesh, params) => {
        const q = parse(AuditQuery, { ...params, taskId: params.taskId ?? params["task-id"] });
        const records = await mesh.audit.query({
          ...(q.taskId !== undefined ? { taskId: q.taskId } : {}),
          ...(q.action !== undefined ? { action: q.action } : {}),
          ...(q.from !== undefined ? { fromMs: q.from } : {}),
          ...(q.to !== undefined ? { toMs: q.to } : {}),
          limit: q.limit,
        });
        return { json: { records } };
      };
    case "/api/schedules":
      return async (mesh) => ({ json: { schedules: await mesh.listSchedules() } });
    case "/api/stats":
      return async (mesh, _params, extra) => ({ json: { ...(await mesh.stats()), web: extra() } });
    case "/metrics":
      return async (mesh, _params, extra) => {
        const { contentType, text } = await mesh.metrics();
        return { contentType, text: text + webMetrics(extra()) };
      };
    default:
      return null;
  }
}

/** The console's own counters, shown in /api/stats and /metrics. */
export interface WebCounters {
  writes: number;
  getWrites: number;
  refused: number;
  rateLimited: number;
}

function webMetrics(c: WebCounters): string {
  const line = (name: string, help: string, value: number) => `# HELP ${name} ${help}\n# TYPE ${name} counter\n${name} ${value}\n`;
  return line("relaymesh_web_writes_total", "Writes done through the web console since it started.", c.writes) +
    line("relaymesh_web_get_writes_total", "Writes done with GET (--allow-get-writes) since the console started.", c.getWrites) +
    line("relaymesh_web_writes_refused_total", "Write requests refused (403, 405, 429) since the console started.", c.refused) +
    line("relaymesh_web_writes_rate_limited_total", "Write requests answered 429 since the console started.", c.rateLimited);
}

export const WRITE_ROUTES = new Set(["/api/cancel", "/api/replay", "/api/replay-batch"]);

/** Runs a write route; returns the JSON answer and the task it touched (for the audit record). */
export async function runWrite(mesh: RelayMesh, path: string, params: Params): Promise<{ json: unknown; taskId: string | null; details: Record<string, unknown> }> {
  switch (path) {
    case "/api/cancel": {
      const b = parse(CancelBody, params);
      const result = await mesh.cancel(b.taskId, { mode: b.mode, ...(b.reason !== undefined ? { reason: b.reason } : {}) });
      if (result.cancelledSteps.length === 0 && (result.status === "SUCCESS" || result.status === "DEAD_LETTER")) {
        throw new HttpError(409, "conflict", `task ${b.taskId} is ${result.status}; only unfinished tasks can be cancelled`);
      }
      return { json: result, taskId: b.taskId, details: { mode: b.mode, reason: b.reason ?? null } };
    }
    case "/api/replay": {
      const b = parse(ReplayBody, params);
      return { json: await mesh.replay(b.taskId), taskId: b.taskId, details: {} };
    }
    case "/api/replay-batch": {
      const b = parse(ReplayBatchBody, params);
      const result = await mesh.replayBatch({ status: b.status, limit: b.limit });
      return { json: result, taskId: null, details: { taskStatus: b.status, limit: b.limit, replayed: result.replayed } };
    }
    default:
      throw new HttpError(404, "not_found", `no route ${path}`);
  }
}
