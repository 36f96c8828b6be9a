// RelayMesh through its public API: a fresh root per run (SQLite, durability full), or a scratch
// schema on PostgreSQL when `store` is given.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { RelayMesh } from "../../../dist/src/index.js";
import pg from "pg";
import { CONCURRENCY, fatal } from "../harness.mjs";

const step = (id, input, dependsOn = []) => ({ id, agent: "echo", input, ...(dependsOn.length ? { dependsOn } : {}) });
const SPECS = {
  chain: (input) => ({ name: "compare-chain", steps: [step("a", input), step("b", input, ["a"]), step("c", input, ["b"])] }),
  diamond: (input) => ({ name: "compare-diamond", steps: [step("a", input), step("b", input, ["a"]), step("c", input, ["a"]), step("d", input, ["b", "c"])] }),
};

export function relaymesh({ store, dropSchemaAfter = false } = {}) {
  const root = mkdtempSync(join(tmpdir(), "relaymesh-compare-"));
  let mesh = null;
  let onFinished = () => {};
  return {
    async open({ work }) {
      mesh = await RelayMesh.open({ root, concurrency: CONCURRENCY, work, settings: { durability: "full" }, ...(store ? { store } : {}) });
      mesh.on("task:finished", ({ taskId, status }) => {
        if (status !== "SUCCESS") fatal(`RelayMesh task ${taskId} ended ${status}`);
        onFinished(taskId);
      });
    },
    async start() { mesh.start(); },
    async submit(shape, input) {
      const r = shape === "single" ? await mesh.submit({ agent: "echo", input }) : await mesh.submitWorkflow(SPECS[shape](input));
      return r.taskId;
    },
    onFinished(fn) { onFinished = fn; },
    async close() {
      try {
        await mesh?.close();
      } finally {
        rmSync(root, { recursive: true, force: true });
        if (store && dropSchemaAfter) await dropSchema(store);
      }
    },
  };
}

async function dropSchema(url) {
  const u = new URL(url);
  const schema = u.searchParams.get("schema");
  u.searchParams.delete("schema");
  const client = new pg.Client({ connectionString: u.href });
  await client.connect();
  try { await client.query(`drop schema if exists "${schema}" cascade`); } finally { await client.end(); }
}
