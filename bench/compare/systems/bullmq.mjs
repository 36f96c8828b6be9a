// BullMQ on Redis 127.0.0.1:6379 (Redis persistence as configured; not fsynced per job).
// Chains: FlowProducer (one atomic submission; C's child B's child A). Diamonds: a flow cannot share
// a child between two parents, so A's processor enqueues B and C, and whichever of them counts
// the join key up to 2 (INCR) enqueues D.
import { FlowProducer, Queue, Worker } from "bullmq";
import { Redis } from "ioredis";
import { CONCURRENCY, fatal } from "../harness.mjs";

export function bullmq({ redisUrl = "redis://127.0.0.1:6379" } = {}) {
  const { hostname, port } = new URL(redisUrl);
  const connection = { host: hostname, port: Number(port || 6379) };
  const queueName = `relaymesh-compare-${process.pid}`;
  const prefix = "rmcompare";
  let queue = null;
  let flows = null;
  let worker = null;
  let redis = null;
  let onFinished = () => {};
  const joinKey = (root) => `${prefix}:${queueName}:join:${root}`;

  async function processJob(job) {
    const { input, root } = job.data;
    switch (job.name) {
      case "a":
        await queue.addBulk([{ name: "b", data: { input, root: job.id } }, { name: "c", data: { input, root: job.id } }]);
        break;
      case "b":
      case "c": {
        if ((await redis.incr(joinKey(root))) === 2) await queue.add("d", { input, root });
        break;
      }
      case "d":
        await redis.del(joinKey(root));
        break;
    }
    return input;
  }

  return {
    async open({ work }) {
      queue = new Queue(queueName, { connection, prefix });
      flows = new FlowProducer({ connection, prefix });
      redis = new Redis(connection);
      await queue.waitUntilReady();
      await flows.waitUntilReady();
      if (work) await this.start();
    },
    async start() {
      worker = new Worker(queueName, processJob, { connection, prefix, concurrency: CONCURRENCY });
      worker.on("completed", (job) => {
        if (job.name === "single" || job.name === "chain-c") onFinished(job.id);
        else if (job.name === "d") onFinished(job.data.root);
      });
      worker.on("failed", (job, error) => fatal(`BullMQ job ${job?.id} (${job?.name}) failed: ${error.message}`));
      await worker.waitUntilReady();
    },
    async submit(shape, input) {
      if (shape === "single") return (await queue.add("single", { input })).id;
      if (shape === "diamond") return (await queue.add("a", { input })).id;
      const node = await flows.add({
        name: "chain-c", queueName, data: { input },
        children: [{ name: "chain-b", queueName, data: { input }, children: [{ name: "chain-a", queueName, data: { input } }] }],
      });
      return node.job.id;
    },
    onFinished(fn) { onFinished = fn; },
    async close() {
      await worker?.close();
      await queue?.obliterate({ force: true });
      await queue?.close();
      await flows?.close();
      redis?.disconnect();
    },
  };
}
