import { readFileSync } from "node:fs";
import { intOption, openMesh, type CommandResult, type GlobalOptions } from "../context.js";
import { ExitCode, ExitError } from "../errors.js";
import { handleShutdownSignals } from "../signals.js";
import { isLoopback, isOpen, type TokenSet } from "../../web/auth.js";
import { createWebConsole } from "../../web/server.js";

export interface ServeWebFlags {
  port?: string;
  bind?: string;
  roToken?: string;
  rwToken?: string;
  roTokenNext?: string;
  rwTokenNext?: string;
  allowGetWrites?: boolean;
  writeRateLimitPerMin?: string;
  tlsKey?: string;
  tlsCert?: string;
}

/** Serves the web console until SIGINT/SIGTERM. */
export default async function serveWeb(globals: GlobalOptions, flags: ServeWebFlags): Promise<CommandResult> {
  const port = intOption("port", flags.port, { min: 0, max: 65_535 }) ?? 8080;
  const bind = flags.bind ?? "127.0.0.1";
  const writeRateLimitPerMin = intOption("write-rate-limit-per-min", flags.writeRateLimitPerMin, { min: 1, max: 1_000_000 }) ?? 60;
  const tokens: TokenSet = {
    ro: [flags.roToken, flags.roTokenNext].filter((t): t is string => !!t),
    rw: [flags.rwToken, flags.rwTokenNext].filter((t): t is string => !!t),
  };
  if (isOpen(tokens) && !isLoopback(bind)) {
    throw new ExitError(ExitCode.USAGE, `--bind ${bind}: without --ro-token or --rw-token the console is open, so it binds loopback only (127.0.0.1 or ::1); give a token to bind elsewhere`);
  }
  if ((flags.tlsKey === undefined) !== (flags.tlsCert === undefined)) throw new ExitError(ExitCode.USAGE, "--tls-key and --tls-cert go together: give both, or neither");
  const readPem = (name: string, file: string) => {
    try {
      return readFileSync(file);
    } catch (error) {
      throw new ExitError(ExitCode.USAGE, `--${name}: cannot read ${file}: ${(error as Error).message}`);
    }
  };
  const tls = flags.tlsKey !== undefined && flags.tlsCert !== undefined ? { key: readPem("tls-key", flags.tlsKey), cert: readPem("tls-cert", flags.tlsCert) } : undefined;

  const mesh = await openMesh(globals, { work: false, storeThread: true, actor: "web" });
  const web = createWebConsole(mesh, { tokens, allowGetWrites: flags.allowGetWrites === true, writeRateLimitPerMin, ...(tls ? { tls } : {}) });
  try {
    await new Promise<void>((resolve, reject) => web.server.once("error", reject).listen(port, bind, resolve));
  } catch (error) {
    await mesh.close();
    throw new ExitError(ExitCode.FAILED, `cannot listen on ${bind}:${port}: ${(error as Error).message}`);
  }
  const address = web.server.address();
  const actualPort = typeof address === "object" && address ? address.port : port;
  const host = bind.includes(":") ? `[${bind}]` : bind;
  const url = `${tls ? "https" : "http"}://${host}:${actualPort}/`;
  process.stderr.write(`relaymesh: web console on ${url}${isOpen(tokens) ? " (open: no token configured)" : ""}\n`);
  let removeHandlers = () => {};
  await new Promise<void>((resolve) => {
    removeHandlers = handleShutdownSignals(() => void web.close().then(resolve), () => void web.close(true).then(resolve), { firstMessage: "stopping the web console" });
  }).finally(() => removeHandlers());
  await mesh.close();
  return { data: { url, port: actualPort }, human: "web console stopped" };
}
