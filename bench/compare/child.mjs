// One system on one workload in a fresh process: `node child.mjs SYSTEM WORKLOAD quick|full`.
// Prints one JSON line on stdout: the workload's figures, or { error }.
import { SIZES, WORKLOADS } from "./harness.mjs";

const [system, workload, size] = process.argv.slice(2);
const pgUrl = process.env.RELAYMESH_PG_URL || "postgres://postgres@127.0.0.1:5432/test";
const ADAPTERS = {
  "relaymesh-sqlite": async () => (await import("./systems/relaymesh.mjs")).relaymesh(),
  "relaymesh-pg": async () => {
    const url = new URL(pgUrl);
    url.searchParams.set("schema", `relaymesh_compare_rm_${process.pid}`);
    return (await import("./systems/relaymesh.mjs")).relaymesh({ store: url.href, dropSchemaAfter: true });
  },
  bullmq: async () => (await import("./systems/bullmq.mjs")).bullmq({ redisUrl: process.env.REDIS_URL || "redis://127.0.0.1:6379" }),
  "graphile-worker": async () => (await import("./systems/graphile-worker.mjs")).graphileWorker({ pgUrl }),
};

const adapter = await ADAPTERS[system]();
let result;
try {
  result = await WORKLOADS[workload].run(adapter, SIZES[size]);
} catch (error) {
  result = { error: error?.message ?? String(error) };
} finally {
  await adapter.close().catch((error) => { process.stderr.write(`${system}: cleanup failed: ${error.message}\n`); });
}
process.stdout.write(`${JSON.stringify(result)}\n`);
process.exit(0);
