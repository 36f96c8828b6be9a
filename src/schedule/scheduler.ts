import type { Store } from "../store/store.js";
import { TERMINAL_TASK_STATUSES, type NewTask, type ScheduleFire, type ScheduleFireResult, type ScheduleRecord } from "../store/types.js";
import { planTick, slotKey } from "./plan.js";

/** Schedules looked at per tick at most (the earliest due first). */
export const SCHEDULES_PER_TICK = 100;

export interface ScheduleTickOptions {
  store: Store;
  nodeId: string;
  nowMs: number;
  /** Builds the task of one slot from the schedule's workflow (throws when this node cannot). */
  build: (schedule: ScheduleRecord, slotMs: number) => NewTask;
  /** Applies a decision (Store.fireSchedule), through the process's one writer. */
  fire: (fire: ScheduleFire) => Promise<ScheduleFireResult>;
  /** Cancels the previous slot's task (overlap "cancel-previous"). */
  cancelPrevious: (taskId: string, schedule: ScheduleRecord) => Promise<void>;
  onError: (error: Error, schedule: ScheduleRecord) => void;
}

export interface FiredSlot {
  name: string;
  slotKey: string;
  taskId: string;
}

/**
 * Fires the schedules due now: one indexed read for the due ones, then per schedule one
 * transaction that advances it by compare-and-set and inserts the tasks of its new slots, so a
 * slot seen by several nodes fires once.
 */
export async function scheduleTick(o: ScheduleTickOptions): Promise<FiredSlot[]> {
  const due = await o.store.dueSchedules(o.nowMs, SCHEDULES_PER_TICK);
  if (due.length === 0) return [];
  const previous = due.flatMap((s) => (s.lastTaskId ? [s.lastTaskId] : []));
  const statuses = previous.length > 0 ? await o.store.taskStatuses(previous) : new Map();
  const fired: FiredSlot[] = [];
  for (const s of due) {
    try {
      const status = s.lastTaskId ? statuses.get(s.lastTaskId) : undefined;
      const plan = planTick(s, o.nowMs, status !== undefined && !TERMINAL_TASK_STATUSES.has(status));
      const fires = plan.fires.map((f) => ({
        slotKey: slotKey(f.slotMs), slotMs: f.slotMs, outcome: f.outcome, task: f.outcome === "fired" ? o.build(s, f.slotMs) : null,
      }));
      if (plan.cancelPrevious && s.lastTaskId) await o.cancelPrevious(s.lastTaskId, s);
      const result = await o.fire({
        name: s.name, expectNextSlotMs: s.nextSlotMs, nextSlotMs: plan.nextSlotMs, nextAtMs: plan.nextAtMs, fires, missed: plan.missed,
        nodeId: o.nodeId, nowMs: o.nowMs,
      });
      for (const c of result.created) fired.push({ name: s.name, ...c });
    } catch (error) {
      o.onError(error as Error, s);
    }
  }
  return fired;
}
