import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { cli, spawnCli, type Spawned } from "../helpers.js";

/** A running `serve-web` and the URL it printed on stderr. */
export interface Console {
  server: Spawned;
  url: string;
  stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export async function startConsole(root: string, args: string[] = []): Promise<Console> {
  const server = spawnCli(["serve-web", "--port", "0", "--root", root, ...args]);
  await server.waitForStderr("web console on ");
  const url = /web console on (https?:\/\/\S+?)\/?(\s|$)/.exec(server.stderr())![1]!;
  return {
    server, url,
    async stop() {
      if (server.child.exitCode === null && server.child.signalCode === null) server.child.kill("SIGTERM");
      return server.exited;
    },
  };
}

/** Makes a DEAD_LETTER task (one `fail` step, one attempt) and returns its id. */
export async function deadTask(root: string): Promise<string> {
  const file = join(root, `dead-${Date.now()}.json`);
  writeFileSync(file, JSON.stringify({ name: "doomed", steps: [{ id: "boom", agent: "fail", retry: { maxAttempts: 1 } }] }));
  const submitted = (await cli(["submit-workflow", "--file", file, "--root", root, "--json"])).json<{ taskId: string }>();
  await cli(["worker", "--once", "--root", root]);
  return submitted.taskId;
}
