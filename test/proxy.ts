// A TCP proxy a test controls, to cut a process off from a server the way a network partition
// does: `pause()` stops forwarding in both directions without closing anything (no FIN, no RST:
// the bytes wait in the kernel's buffers, as a silent network's retransmissions would), `resume()`
// forwards again, late bytes included.
import { createConnection, createServer, type Server, type Socket } from "node:net";

export class PartitionProxy {
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  #paused = false;

  private constructor(server: Server) {
    this.#server = server;
  }

  /** Listens on a free loopback port and forwards every connection to `target`. */
  static async start(target: { host: string; port: number }): Promise<PartitionProxy> {
    const server = createServer();
    const proxy = new PartitionProxy(server);
    server.on("connection", (client) => proxy.#pipe(client, target));
    await new Promise<void>((resolve, reject) => server.listen(0, "127.0.0.1", resolve).once("error", reject));
    return proxy;
  }

  get port(): number {
    return (this.#server.address() as { port: number }).port;
  }

  get paused(): boolean {
    return this.#paused;
  }

  /** Connections open through the proxy. */
  get connections(): number {
    return this.#sockets.size / 2;
  }

  /** Stops forwarding: nothing is read from either side until `resume()`. */
  pause(): void {
    this.#paused = true;
    for (const s of this.#sockets) s.pause();
  }

  resume(): void {
    this.#paused = false;
    for (const s of this.#sockets) s.resume();
  }

  async close(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #pipe(client: Socket, target: { host: string; port: number }): void {
    const upstream = createConnection(target);
    for (const [from, to] of [[client, upstream], [upstream, client]] as const) {
      this.#sockets.add(from);
      from.on("data", (chunk) => { if (!to.write(chunk)) from.pause(); });
      to.on("drain", () => { if (!this.#paused) from.resume(); });
      from.on("close", () => { this.#sockets.delete(from); to.destroy(); });
      from.on("error", () => to.destroy());
      if (this.#paused) from.pause();
    }
  }
}
