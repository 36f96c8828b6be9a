import { createServer } from "node:http";
import { intOption, openMesh, type CommandResult, type GlobalOptions } from "../context.js";
import { handleShutdownSignals } from "../signals.js";

/** Serves Prometheus text at --path until SIGINT/SIGTERM. */
export default async function serveMetrics(globals: GlobalOptions, flags: { port?: string; path?: string; bind?: string }): Promise<CommandResult> {
  const port = intOption("port", flags.port, { min: 0, max: 65_535 }) ?? 9464;
  const path = flags.path ?? "/metrics";
  const bind = flags.bind ?? "127.0.0.1";
  const mesh = await openMesh(globals, { work: false, storeThread: true });
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://localhost");
    if (req.method !== "GET" || url.pathname !== path) {
      res.writeHead(req.method !== "GET" && url.pathname === path ? 405 : 404, { "content-type": "text/plain" }).end("not found\n");
      return;
    }
    mesh.metrics().then(
      ({ contentType, text }) => res.writeHead(200, { "content-type": contentType }).end(text),
      (error: Error) => res.writeHead(500, { "content-type": "text/plain" }).end(`${error.message}\n`),
    );
  });
  await new Promise<void>((resolve, reject) => server.once("error", reject).listen(port, bind, resolve));
  const address = server.address();
  const actualPort = typeof address === "object" && address ? address.port : port;
  process.stderr.write(`relaymesh: metrics on http://${bind}:${actualPort}${path}\n`);
  let removeHandlers = () => {};
  await new Promise<void>((resolve) => {
    const stop = () => server.close(() => resolve());
    removeHandlers = handleShutdownSignals(stop, () => { server.closeAllConnections(); stop(); }, { firstMessage: "stopping the metrics server" });
  }).finally(() => removeHandlers());
  await mesh.close();
  return { data: { port: actualPort, path }, human: "metrics server stopped" };
}
