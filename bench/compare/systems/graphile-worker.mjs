// graphile-worker 0.17 on PostgreSQL with the throughput settings of its performance page
// (localQueue size 500, completeJobBatchDelay 0, pool concurrency + 2), in a scratch schema dropped
// at close. A job's handler enqueues its dependents (helpers.addJob/addJobs: their own
// transactions, before the job completes); a diamond's join is counted in a table of the same schema.
// graphile-worker emits "job:complete" before its completion is written, so runs end when the jobs
// table is empty (`settled`).
import { EventEmitter } from "node:events";
import { performance } from "node:perf_hooks";
import { Logger, makeWorkerUtils, run } from "graphile-worker";
import { CONCURRENCY, fatal } from "../harness.mjs";

const quiet = new Logger(() => (level, message) => { if (level === "error") process.stderr.write(`graphile-worker: ${message}\n`); });

export function graphileWorker({ pgUrl = "postgres://postgres@127.0.0.1:5432/test" } = {}) {
  const schema = `relaymesh_compare_gw_${process.pid}`;
  const common = { connectionString: pgUrl, schema, logger: quiet };
  const events = new EventEmitter();
  let utils = null;
  let runner = null;
  let onFinished = () => {};

  const taskList = {
    single: async (p) => p.input,
    "chain-a": async (p, h) => { await h.addJob("chain-b", { input: p.input, root: h.job.id }); return p.input; },
    "chain-b": async (p, h) => { await h.addJob("chain-c", p); return p.input; },
    "chain-c": async (p) => p.input,
    a: async (p, h) => {
      await h.addJobs([{ identifier: "b", payload: { input: p.input, root: h.job.id } }, { identifier: "c", payload: { input: p.input, root: h.job.id } }]);
      return p.input;
    },
    b: join, c: join,
    d: async (p, h) => { await h.query(`delete from "${schema}".compare_join where root = $1`, [p.root]); return p.input; },
  };
  async function join(p, h) {
    const { rows } = await h.query(
      `insert into "${schema}".compare_join as j (root, n) values ($1, 1) on conflict (root) do update set n = j.n + 1 returning n`, [p.root]);
    if (rows[0].n === 2) await h.addJob("d", p);
    return p.input;
  }

  events.on("job:complete", ({ job, error }) => {
    if (error) fatal(`graphile-worker job ${job.id} (${job.task_identifier}) failed: ${error.message}`);
    const name = job.task_identifier;
    if (name === "single") onFinished(job.id);
    else if (name === "chain-c" || name === "d") onFinished(job.payload.root);
  });

  return {
    async open({ work }) {
      utils = await makeWorkerUtils(common);
      await utils.migrate();
      await utils.withPgClient((c) => c.query(`create table if not exists "${schema}".compare_join (root text primary key, n int not null)`));
      if (work) await this.start();
    },
    async start() {
      runner = await run({
        ...common, concurrency: CONCURRENCY, noHandleSignals: true, pollInterval: 2000, taskList, events,
        preset: { worker: { localQueue: { size: 500 }, completeJobBatchDelay: 0, maxPoolSize: CONCURRENCY + 2 } },
      });
    },
    async submit(shape, input) {
      const identifier = shape === "single" ? "single" : shape === "chain" ? "chain-a" : "a";
      return (await utils.addJob(identifier, { input })).id;
    },
    onFinished(fn) { onFinished = fn; },
    async settled() {
      const deadline = performance.now() + 60_000;
      for (;;) {
        const { rows } = await utils.withPgClient((c) => c.query(`select count(*)::int as n from "${schema}"._private_jobs`));
        if (rows[0].n === 0) return performance.now();
        if (performance.now() > deadline) throw new Error(`graphile-worker: ${rows[0].n} jobs still in the table after 60 s`);
        await new Promise((r) => setTimeout(r, 2));
      }
    },
    async close() {
      await runner?.stop();
      await utils?.withPgClient((c) => c.query(`drop schema if exists "${schema}" cascade`));
      await utils?.release();
    },
  };
}
